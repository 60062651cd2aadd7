locals {
  # Everything is scoped to one cluster, so its ARN gives partition, region and account without
  # extra data-source calls: arn:<partition>:ecs:<region>:<account>:cluster/<name>.
  arn_parts    = split(":", var.cluster_arn)
  partition    = local.arn_parts[1]
  region       = local.arn_parts[3]
  account_id   = local.arn_parts[4]
  cluster_name = element(split("/", var.cluster_arn), 1)
  ecs_arn      = "arn:${local.partition}:ecs:${local.region}:${local.account_id}"

  task_definition_arns = "${local.ecs_arn}:task-definition/${var.task_definition_family_prefix}*"
  cluster_task_arns    = "${local.ecs_arn}:task/${local.cluster_name}/*"

  bundles_arn = "${var.bucket_arn}/${trim(var.bundles_prefix, "/")}/*"
  results_arn = "${var.bucket_arn}/${trim(var.results_prefix, "/")}/*"

  # Role ARNs built from inputs rather than read from the roles: the policy documents are then
  # known at plan time (reviewable in the plan, testable offline) and never wait on IAM.
  role_arn_prefix    = "arn:${local.partition}:iam::${local.account_id}:role${var.path}${var.name}"
  execution_role_arn = "${local.role_arn_prefix}-execution"
  task_role_arn      = "${local.role_arn_prefix}-task"

  # Per-run tokens travel to flow-run containers in one Secrets Manager secret per run under
  # this fixed prefix (fleetflow.aws.run_token_secrets): launchers write and delete them, flow
  # runs read them. The trailing * also covers the random suffix Secrets Manager appends.
  run_token_secret_arns = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:fleetflow/run-tokens/*"

  ecr_repository_arns = coalesce(var.ecr_repository_arns, ["arn:${local.partition}:ecr:${local.region}:${local.account_id}:repository/*"])
}

# ---------------------------------------------------------------------------------------------
# Trust: only ECS tasks of this account (aws:SourceAccount guards against the confused deputy).
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["${local.ecs_arn}:*"]
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Launching flow runs: shared by the worker and (optionally) by parent flows.
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "launch" {
  statement {
    sid       = "RunFlowTasksInThisCluster"
    actions   = ["ecs:RunTask"]
    resources = [local.task_definition_arns]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [var.cluster_arn]
    }
  }

  statement {
    sid       = "WatchAndStopTasksInThisCluster"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [local.cluster_task_arns]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [var.cluster_arn]
    }
  }

  # RunTask and RegisterTaskDefinition with tags need ecs:TagResource; allow it only as part of
  # those two calls, never to re-tag existing resources.
  statement {
    sid       = "TagOnCreate"
    actions   = ["ecs:TagResource"]
    resources = [local.task_definition_arns, local.cluster_task_arns]

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask", "RegisterTaskDefinition"]
    }
  }

  statement {
    sid       = "RunTokenSecrets"
    actions   = ["secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:DeleteSecret", "secretsmanager:TagResource"]
    resources = [local.run_token_secret_arns]
  }

  statement {
    sid       = "PassOnlyTheFlowRoles"
    actions   = ["iam:PassRole"]
    resources = [local.task_role_arn, local.execution_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Task execution role: what the ECS agent needs to start a container (pull image, ship stdout
# to CloudWatch, resolve `secrets`). Used by the worker service and by every flow run.
# ---------------------------------------------------------------------------------------------
resource "aws_iam_role" "execution" {
  name                 = "${var.name}-execution"
  path                 = var.path
  description          = "fleetflow: ECS task execution role (image pull, logs, secrets)"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

data "aws_iam_policy_document" "execution" {
  # GetAuthorizationToken has no resource-level permissions; "*" is the only valid resource.
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = local.ecr_repository_arns
  }

  statement {
    sid       = "ContainerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.log_group_arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.secret_arns) > 0 ? [1] : []
    content {
      sid       = "InjectSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = var.secret_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.ssm_parameter_arns) > 0 ? [1] : []
    content {
      sid       = "InjectParameters"
      actions   = ["ssm:GetParameters"]
      resources = var.ssm_parameter_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptSecrets"
      actions   = ["kms:Decrypt"]
      resources = var.kms_key_arns
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "fleetflow-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---------------------------------------------------------------------------------------------
# Flow task role: what user flow code (fleetflow.runner) may do inside a flow-run container.
# ---------------------------------------------------------------------------------------------
resource "aws_iam_role" "task" {
  name                 = "${var.name}-task"
  path                 = var.path
  description          = "fleetflow: role of flow-run containers (bundles, results, logs, child runs)"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

data "aws_iam_policy_document" "task" {
  # A parent flow launching its children needs exactly the worker's launch rights.
  source_policy_documents = var.flow_runs_launch_children ? [data.aws_iam_policy_document.launch.json] : []

  statement {
    sid       = "ReadBundles"
    actions   = ["s3:GetObject"]
    resources = [local.bundles_arn]
  }

  statement {
    sid       = "ReadWriteResults"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [local.results_arn]
  }

  # s3fs lists before it reads (exists/info); allow listing only under the two prefixes.
  statement {
    sid       = "ListBundlesAndResults"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${trim(var.bundles_prefix, "/")}/*", "${trim(var.results_prefix, "/")}/*"]
    }
  }

  # Its own token (a run reads the secret named in FLEETFLOW_API_KEY_SECRET_ARN at start).
  statement {
    sid       = "ReadRunToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.run_token_secret_arns]
  }

  statement {
    sid       = "WriteRunLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.log_group_arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "UseBucketKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = var.kms_key_arns
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "fleetflow-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# ---------------------------------------------------------------------------------------------
# Worker role: the task role of the `fleetflow worker` service. Least privilege: launch, watch
# and stop tasks in one cluster, register task definitions, pass only the two flow roles, read
# the logs it streams, and look up subnets.
# ---------------------------------------------------------------------------------------------
resource "aws_iam_role" "worker" {
  name                 = "${var.name}-worker"
  path                 = var.path
  description          = "fleetflow: role of the worker service (launch and watch flow runs)"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

data "aws_iam_policy_document" "worker" {
  source_policy_documents = [data.aws_iam_policy_document.launch.json]

  # ListTasks is authorised against container instances; the ecs:cluster condition is what
  # actually pins it to this cluster (Fargate tasks have no container instance).
  statement {
    sid       = "ListTasksInThisCluster"
    actions   = ["ecs:ListTasks"]
    resources = ["${local.ecs_arn}:container-instance/${local.cluster_name}/*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [var.cluster_arn]
    }
  }

  # Neither action supports resource-level permissions (AWS service authorization reference),
  # so "*" is the narrowest valid resource.
  statement {
    sid       = "TaskDefinitions"
    actions   = ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "ReadRunLogs"
    actions   = ["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"]
    resources = [var.log_group_arn, "${var.log_group_arn}:*"]
  }

  # Describe* calls have no resource-level permissions; used to resolve default subnets and
  # security groups when a work pool does not name them.
  statement {
    sid       = "DiscoverNetwork"
    actions   = ["ec2:DescribeSubnets", "ec2:DescribeVpcs", "ec2:DescribeSecurityGroups"]
    resources = ["*"]
  }

  # ListSecrets has no resource-level permissions; the worker's sweep of leftover run-token
  # secrets lists names under fleetflow/run-tokens/ only, and may delete only those (above).
  statement {
    sid       = "ListRunTokenSecrets"
    actions   = ["secretsmanager:ListSecrets"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "fleetflow-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}
