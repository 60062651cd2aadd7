# fleetflow server: ECS Fargate service running `fleetflow server start` behind an HTTPS ALB,
# optionally with its own encrypted RDS PostgreSQL. Wiring: clients -> ALB:443 -> server:4200
# -> database:5432. Nothing but the server holds the database URL or the encryption key.

locals {
  region      = split(":", var.cluster_arn)[3]
  port        = 4200
  db_url_arn  = var.create_database ? aws_secretsmanager_secret.this[0].arn : var.database_url_secret_arn
  environment = merge({ FLEETFLOW_HOME = "/tmp/fleetflow" }, var.environment)
  secrets = {
    FLEETFLOW_DATABASE_URL   = local.db_url_arn
    FLEETFLOW_ENCRYPTION_KEY = var.encryption_key_secret_arn
  }

  container = {
    name      = "server"
    image     = var.image
    essential = true
    # The ALB terminates TLS; the server needs auth on a non-loopback host, and has it.
    command      = ["fleetflow", "server", "start", "--host", "0.0.0.0", "--port", tostring(local.port)]
    portMappings = [{ containerPort = local.port, protocol = "tcp" }]
    environment  = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
    # Resolved by the ECS agent at start: never in the task definition or Terraform state.
    secrets                = [for k in sort(keys(local.secrets)) : { name = k, valueFrom = local.secrets[k] }]
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    # SIGTERM drains in-flight requests (long-polls included) for up to 30 s.
    stopTimeout = 40
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_name
        awslogs-region        = local.region
        awslogs-stream-prefix = "server"
      }
    }
  }
}

# ---- security groups: ALB -> server -> database; flow-run tasks and workers -> ALB ---------
resource "aws_security_group" "alb" {
  name        = "${var.name}-server-alb"
  description = "fleetflow server load balancer: HTTPS from flow-run tasks, workers and allowed CIDRs"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_security_group" "server" {
  name        = "${var.name}-server"
  description = "fleetflow server tasks: the API port from the load balancer only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_security_group_rule" "alb_https_from_clients" {
  count                    = length(var.client_security_group_ids)
  description              = "HTTPS from flow-run tasks and workers"
  type                     = "ingress"
  from_port                = 443
  to_port                  = 443
  protocol                 = "tcp"
  security_group_id        = aws_security_group.alb.id
  source_security_group_id = var.client_security_group_ids[count.index]
}

resource "aws_security_group_rule" "alb_https_from_cidrs" {
  count             = length(var.allowed_cidr_blocks) > 0 ? 1 : 0
  description       = "HTTPS from allowed networks"
  type              = "ingress"
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  security_group_id = aws_security_group.alb.id
  cidr_blocks       = var.allowed_cidr_blocks
}

resource "aws_security_group_rule" "alb_to_server" {
  description              = "The load balancer forwards to the server tasks"
  type                     = "egress"
  from_port                = local.port
  to_port                  = local.port
  protocol                 = "tcp"
  security_group_id        = aws_security_group.alb.id
  source_security_group_id = aws_security_group.server.id
}

resource "aws_security_group_rule" "server_from_alb" {
  description              = "API port from the load balancer"
  type                     = "ingress"
  from_port                = local.port
  to_port                  = local.port
  protocol                 = "tcp"
  security_group_id        = aws_security_group.server.id
  source_security_group_id = aws_security_group.alb.id
}

resource "aws_security_group_rule" "server_egress_https" {
  description       = "ECR, Secrets Manager, CloudWatch Logs and S3 (result reads) over HTTPS"
  type              = "egress"
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  security_group_id = aws_security_group.server.id
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_security_group_rule" "server_to_database" {
  count                    = var.create_database ? 1 : 0
  description              = "PostgreSQL on the database of this module"
  type                     = "egress"
  from_port                = 5432
  to_port                  = 5432
  protocol                 = "tcp"
  security_group_id        = aws_security_group.server.id
  source_security_group_id = aws_security_group.database[0].id
}

# ---- load balancer ------------------------------------------------------------------------
resource "aws_lb" "this" {
  name                       = "${var.name}-server"
  internal                   = var.internal
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  # Long-polls (run waits, claims) last up to 60 s.
  idle_timeout = 75

  dynamic "access_logs" {
    for_each = var.access_logs_bucket == null ? [] : [var.access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = "${var.name}-server"
      enabled = true
    }
  }

  tags = var.tags
}

resource "aws_lb_target_group" "this" {
  name                 = "${var.name}-server"
  port                 = local.port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 35 # longer than a long-poll's drain

  health_check {
    path                = "/api/health" # the one route without authentication
    matcher             = "200"
    healthy_threshold   = 2
    unhealthy_threshold = 3
    interval            = 15
  }

  tags = var.tags
}

resource "aws_lb_listener" "this" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS-1-2-2017-01"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}

# ---- the service --------------------------------------------------------------------------
resource "aws_ecs_task_definition" "this" {
  family                   = "${var.name}-server"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn
  container_definitions    = jsonencode([local.container])

  volume {
    name = "tmp"
  }

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name             = "${var.name}-server"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.server.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = "server"
    container_port   = local.port
  }

  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true
  depends_on              = [aws_lb_listener.this]

  tags = var.tags
}

# ---- optional database --------------------------------------------------------------------
resource "aws_security_group" "database" {
  count       = var.create_database ? 1 : 0
  name        = "${var.name}-server-db"
  description = "fleetflow server database: PostgreSQL from the server tasks only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_security_group_rule" "database_from_server" {
  count                    = var.create_database ? 1 : 0
  description              = "PostgreSQL from the server tasks"
  type                     = "ingress"
  from_port                = 5432
  to_port                  = 5432
  protocol                 = "tcp"
  security_group_id        = aws_security_group.database[0].id
  source_security_group_id = aws_security_group.server.id
}

resource "aws_db_subnet_group" "this" {
  count      = var.create_database ? 1 : 0
  name       = "${var.name}-server"
  subnet_ids = var.private_subnet_ids
  tags       = var.tags
}

locals {
  # Only the aws provider is used (3.39 has no managed master password): uuid() is 122 random
  # bits, generated once -- ignore_changes below keeps it from changing on later applies.
  db_password = replace(uuid(), "-", "")
}

resource "aws_db_instance" "this" {
  count                               = var.create_database ? 1 : 0
  identifier                          = "${var.name}-server"
  engine                              = "postgres"
  instance_class                      = var.database_instance_class
  allocated_storage                   = var.database_allocated_storage
  name                                = "fleetflow"
  username                            = "fleetflow"
  password                            = local.db_password
  db_subnet_group_name                = aws_db_subnet_group.this[0].name
  vpc_security_group_ids              = [aws_security_group.database[0].id]
  publicly_accessible                 = false
  storage_encrypted                   = true
  kms_key_id                          = var.kms_key_arn
  backup_retention_period             = 7
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = !var.deletion_protection
  final_snapshot_identifier           = var.deletion_protection ? "${var.name}-server-final" : null
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  multi_az                            = var.deletion_protection
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.this[0].arn
  parameter_group_name                = aws_db_parameter_group.this[0].name
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = var.kms_key_arn
  enabled_cloudwatch_logs_exports     = ["postgresql"]

  lifecycle {
    ignore_changes = [password]
  }

  tags = var.tags
}

resource "aws_db_parameter_group" "this" {
  count  = var.create_database ? 1 : 0
  name   = "${var.name}-server"
  family = var.database_parameter_group_family

  # Encryption in transit: the server's URL says sslmode=require; the database insists too.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # Query logging: statements slower than 500 ms, and every DDL statement (migrations).
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  tags = var.tags
}

resource "aws_iam_role" "this" {
  count = var.create_database ? 1 : 0
  name  = "${var.name}-server-rds-monitoring"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "monitoring.rds.amazonaws.com" } }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "this" {
  count      = var.create_database ? 1 : 0
  role       = aws_iam_role.this[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:The URL embeds the generated RDS password; rotating it needs a rotation Lambda that rewrites both, which this module leaves to the operator (re-apply with a new password).
  count       = var.create_database ? 1 : 0
  name_prefix = "${var.name}-server-database-url-"
  description = "FLEETFLOW_DATABASE_URL of the fleetflow server (read by the server task only)"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "this" {
  count     = var.create_database ? 1 : 0
  secret_id = aws_secretsmanager_secret.this[0].id
  secret_string = format("postgresql+psycopg://fleetflow:%s@%s/fleetflow?sslmode=require",
  local.db_password, aws_db_instance.this[0].endpoint)

  lifecycle {
    ignore_changes = [secret_string]
  }
}
