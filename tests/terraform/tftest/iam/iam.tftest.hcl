# Policy logic of modules/iam, checked on the rendered JSON at plan time. The real provider
# renders aws_iam_policy_document locally (no AWS call); a mock provider would return random JSON.
# Condition values are compared through flatten([...]): 3.x renders one value as a list, 5.x as a
# string.

provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "offline-test"
  secret_key                  = "offline-test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  # 3.x-only argument (the suite pins 3.39): without it the provider calls EC2 at configure time,
  # which hangs in retries offline.
  skip_get_ec2_platforms = true
}

variables {
  name          = "ff"
  cluster_arn   = "arn:aws:ecs:eu-west-1:111122223333:cluster/flows"
  log_group_arn = "arn:aws:logs:eu-west-1:111122223333:log-group:/fleetflow/flows"
  bucket_arn    = "arn:aws:s3:::ff-code"
  secret_arns   = ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:ff/db-AbCdEf"]
}

run "worker_launches_only_in_its_cluster" {
  command = plan

  assert {
    condition = alltrue([
      for s in jsondecode(data.aws_iam_policy_document.worker.json).Statement :
      try(flatten([s.Condition.ArnEquals["ecs:cluster"]]), null) == [var.cluster_arn]
      if length(setintersection(flatten([s.Action]), ["ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks", "ecs:ListTasks"])) > 0
    ])
    error_message = "Every RunTask/StopTask/DescribeTasks/ListTasks statement must carry ArnEquals ecs:cluster = the cluster ARN."
  }

  assert {
    condition = one([
      for s in jsondecode(data.aws_iam_policy_document.worker.json).Statement : s.Resource
      if s.Sid == "RunFlowTasksInThisCluster"
    ]) == "arn:aws:ecs:eu-west-1:111122223333:task-definition/fleetflow*"
    error_message = "RunTask must be limited to fleetflow's task-definition families."
  }

  assert {
    condition = one([
      for s in jsondecode(data.aws_iam_policy_document.worker.json).Statement : s.Resource
      if s.Sid == "WatchAndStopTasksInThisCluster"
    ]) == "arn:aws:ecs:eu-west-1:111122223333:task/flows/*"
    error_message = "StopTask/DescribeTasks must be limited to tasks of the cluster."
  }
}

run "worker_passes_only_the_two_flow_roles" {
  command = plan

  assert {
    condition = toset(flatten([
      for s in jsondecode(data.aws_iam_policy_document.worker.json).Statement : s.Resource
      if contains(flatten([s.Action]), "iam:PassRole")
      ])) == toset([
      "arn:aws:iam::111122223333:role/ff-execution",
      "arn:aws:iam::111122223333:role/ff-task",
    ])
    error_message = "iam:PassRole must name exactly the execution and flow task roles (never the worker role or *)."
  }

  assert {
    condition = flatten([
      for s in jsondecode(data.aws_iam_policy_document.worker.json).Statement : s.Condition.StringEquals["iam:PassedToService"]
      if contains(flatten([s.Action]), "iam:PassRole")
    ]) == ["ecs-tasks.amazonaws.com"]
    error_message = "iam:PassRole must be limited to ECS tasks."
  }
}

run "wildcard_resources_only_for_actions_without_resource_level_permissions" {
  command = plan

  assert {
    condition = alltrue([
      for s in concat(
        jsondecode(data.aws_iam_policy_document.worker.json).Statement,
        jsondecode(data.aws_iam_policy_document.task.json).Statement,
        jsondecode(data.aws_iam_policy_document.execution.json).Statement,
      ) :
      length(setsubtract(flatten([s.Action]), [
        "ecr:GetAuthorizationToken", "ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition",
        "ec2:DescribeSubnets", "ec2:DescribeVpcs", "ec2:DescribeSecurityGroups", "secretsmanager:ListSecrets",
      ])) == 0
      if contains(flatten([s.Resource]), "*")
    ])
    error_message = "A statement with Resource \"*\" contains an action that supports resource-level permissions."
  }

  assert {
    condition = alltrue([
      for s in concat(
        jsondecode(data.aws_iam_policy_document.worker.json).Statement,
        jsondecode(data.aws_iam_policy_document.task.json).Statement,
        jsondecode(data.aws_iam_policy_document.execution.json).Statement,
      ) : !anytrue([for a in flatten([s.Action]) : endswith(a, ":*") || a == "*"])
    ])
    error_message = "No statement may grant a whole service (action wildcard)."
  }
}

run "flow_task_reads_bundles_and_writes_results_only" {
  command = plan

  assert {
    condition = one([
      for s in jsondecode(data.aws_iam_policy_document.task.json).Statement : s.Resource
      if s.Sid == "ReadBundles"
    ]) == "arn:aws:s3:::ff-code/bundles/*"
    error_message = "Flow runs read bundles under bundles/ only."
  }

  assert {
    condition = !anytrue([
      for s in jsondecode(data.aws_iam_policy_document.task.json).Statement :
      contains(flatten([s.Action]), "s3:PutObject") && contains(flatten([s.Resource]), "arn:aws:s3:::ff-code/bundles/*")
    ])
    error_message = "Flow runs must not be able to overwrite bundles."
  }

  assert {
    condition = anytrue([
      for s in jsondecode(data.aws_iam_policy_document.task.json).Statement : contains(flatten([s.Action]), "ecs:RunTask")
    ])
    error_message = "By default a parent flow may launch its children."
  }
}

run "flow_task_without_child_launch_rights" {
  command = plan

  variables {
    flow_runs_launch_children = false
  }

  assert {
    condition = !anytrue([
      for s in jsondecode(data.aws_iam_policy_document.task.json).Statement :
      anytrue([for a in flatten([s.Action]) : startswith(a, "ecs:") || a == "iam:PassRole"])
    ])
    error_message = "With flow_runs_launch_children = false the flow task role has no ECS or PassRole rights."
  }
}

run "execution_role_reads_only_the_given_secrets" {
  command = plan

  assert {
    condition = one([
      for s in jsondecode(data.aws_iam_policy_document.execution.json).Statement : s.Resource
      if s.Sid == "InjectSecrets"
    ]) == var.secret_arns[0]
    error_message = "The execution role may read exactly the listed secrets."
  }

  assert {
    condition     = one([for s in jsondecode(data.aws_iam_policy_document.execution.json).Statement : s.Resource if s.Sid == "EcrPull"]) == "arn:aws:ecr:eu-west-1:111122223333:repository/*"
    error_message = "ECR pulls default to the cluster's account and region."
  }
}

run "no_secret_statement_without_secrets" {
  command = plan

  variables {
    secret_arns = []
  }

  assert {
    condition     = length([for s in jsondecode(data.aws_iam_policy_document.execution.json).Statement : s if try(s.Sid, "") == "InjectSecrets"]) == 0
    error_message = "No secretsmanager statement when there are no secrets (an empty Resource list is invalid IAM)."
  }
}

run "trust_is_limited_to_this_account" {
  command = plan

  assert {
    condition     = flatten([jsondecode(data.aws_iam_policy_document.ecs_tasks_assume.json).Statement[0].Condition.StringEquals["aws:SourceAccount"]]) == ["111122223333"]
    error_message = "Roles must only be assumable by ECS tasks of the cluster's account."
  }
}

run "rejects_a_malformed_cluster_arn" {
  command = plan

  variables {
    cluster_arn = "flows"
  }

  expect_failures = [var.cluster_arn]
}

run "run_token_secrets_only_under_their_prefix" {
  command = plan

  assert {
    condition = one([
      for s in jsondecode(data.aws_iam_policy_document.worker.json).Statement : s.Resource
      if s.Sid == "RunTokenSecrets"
    ]) == "arn:aws:secretsmanager:eu-west-1:111122223333:secret:fleetflow/run-tokens/*"
    error_message = "The worker writes and deletes run-token secrets under fleetflow/run-tokens/ only."
  }

  assert {
    condition = one([
      for s in jsondecode(data.aws_iam_policy_document.task.json).Statement : s.Resource
      if s.Sid == "ReadRunToken"
    ]) == "arn:aws:secretsmanager:eu-west-1:111122223333:secret:fleetflow/run-tokens/*"
    error_message = "Flow runs read run-token secrets under fleetflow/run-tokens/ only."
  }
}
