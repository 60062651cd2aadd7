locals {
  # arn:<partition>:ecs:<region>:<account>:cluster/<name>; the awslogs driver needs the region.
  region = split(":", var.cluster_arn)[3]

  environment = merge(
    # Read-only root filesystem: fleetflow's home (SQLite fallback, bundle cache) goes to /tmp.
    { FLEETFLOW_HOME = "/tmp/fleetflow" },
    var.environment,
  )

  container = {
    name      = "worker"
    image     = var.image
    essential = true
    command   = concat(["fleetflow", "worker", "start", "--pool", var.work_pool_name], var.extra_args)

    environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
    # Resolved by the ECS agent with the execution role at container start: the values never
    # appear in the task definition, in Terraform state or in `describe-task-definition`.
    secrets = [for k in sort(keys(var.secrets)) : { name = k, valueFrom = var.secrets[k] }]

    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_name
        awslogs-region        = local.region
        awslogs-stream-prefix = "worker"
      }
    }
  }
}

resource "aws_ecs_task_definition" "this" {
  family                   = "${var.name}-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.worker_role_arn
  container_definitions    = jsonencode([local.container])

  # Fargate task storage, writable even though the root filesystem is not.
  volume {
    name = "tmp"
  }

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name            = "${var.name}-worker"
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.this.arn
  desired_count   = var.desired_count
  launch_type     = "FARGATE"
  # Pinned to LATEST so security fixes in the Fargate platform are picked up on each deployment.
  platform_version = "LATEST"

  # Claims are atomic (two workers never launch the same run), so running old and new worker side
  # by side during a deployment is safe and avoids a gap in launching.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = var.assign_public_ip
  }

  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  tags = var.tags
}
