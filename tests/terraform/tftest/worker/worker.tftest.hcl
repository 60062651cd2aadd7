# The worker's container definition is built from inputs only, so it is fully known at plan time;
# a mock provider is enough (no AWS, no credentials).

mock_provider "aws" {}

variables {
  name               = "ff"
  cluster_arn        = "arn:aws:ecs:eu-west-1:111122223333:cluster/flows"
  image              = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/fleetflow:1.2.3"
  work_pool_name     = "gpu"
  subnet_ids         = ["subnet-a", "subnet-b"]
  security_group_ids = ["sg-1"]
  execution_role_arn = "arn:aws:iam::111122223333:role/ff-execution"
  worker_role_arn    = "arn:aws:iam::111122223333:role/ff-worker"
  log_group_name     = "/fleetflow/flows"
  environment        = { FLEETFLOW_LOGGING_LEVEL = "DEBUG" }
  secrets            = { FLEETFLOW_DATABASE_URL = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:ff/db-AbCdEf" }
}

run "runs_fleetflow_worker_start_for_the_pool" {
  command = plan

  assert {
    condition     = output.container_definition.command == ["fleetflow", "worker", "start", "--pool", "gpu"]
    error_message = "The worker must run `fleetflow worker start --pool <work_pool_name>`."
  }

  assert {
    condition     = output.container_definition.image == var.image
    error_message = "The worker runs the given runtime image."
  }
}

run "secrets_are_references_never_plain_environment" {
  command = plan

  assert {
    condition = output.container_definition.secrets == [{
      name      = "FLEETFLOW_DATABASE_URL"
      valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:ff/db-AbCdEf"
    }]
    error_message = "Secrets must be passed as ECS secrets (valueFrom = ARN)."
  }

  assert {
    condition     = !contains([for e in output.container_definition.environment : e.name], "FLEETFLOW_DATABASE_URL")
    error_message = "The database URL must not appear in plain environment variables."
  }

  assert {
    condition     = contains(output.container_definition.environment, { name = "FLEETFLOW_LOGGING_LEVEL", value = "DEBUG" })
    error_message = "Plain settings are passed through as environment variables."
  }
}

run "hardened_container_and_private_networking" {
  command = plan

  assert {
    condition     = output.container_definition.readonlyRootFilesystem
    error_message = "The worker's root filesystem is read-only."
  }

  assert {
    condition     = contains(output.container_definition.environment, { name = "FLEETFLOW_HOME", value = "/tmp/fleetflow" })
    error_message = "fleetflow's home must point at the writable /tmp volume."
  }

  assert {
    condition     = output.container_definition.logConfiguration.options["awslogs-region"] == "eu-west-1"
    error_message = "The awslogs region comes from the cluster ARN."
  }

  assert {
    condition     = aws_ecs_service.this.network_configuration[0].assign_public_ip == false
    error_message = "Worker tasks get no public IP by default."
  }

  assert {
    condition     = aws_ecs_service.this.launch_type == "FARGATE" && aws_ecs_task_definition.this.network_mode == "awsvpc"
    error_message = "The worker runs on Fargate with awsvpc networking."
  }
}
