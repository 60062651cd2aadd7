# ---------------------------------------------------------------------------------------------
# The fleetflow server (modules/server): an ECS service behind an HTTPS ALB, optionally with its
# own RDS PostgreSQL. Workers and flow runs talk to it over HTTPS and never hold a database URL
# or the encryption key. create_server = false keeps the direct-PostgreSQL path instead.
# ---------------------------------------------------------------------------------------------

# Only the secrets' *containers* are created; their values are put with
# `aws secretsmanager put-secret-value` after apply, so they never enter Terraform state.
resource "aws_secretsmanager_secret" "encryption_key" {
  #checkov:skip=CKV_AWS_149:The AWS-managed key is enough here; pass encryption_key_secret_arn to bring a CMK-encrypted secret.
  #checkov:skip=CKV2_AWS_57:A Fernet key is rotated by re-encrypting block secrets, not by Secrets Manager rotation.
  count = local.use_server && var.encryption_key_secret_arn == null ? 1 : 0

  name_prefix             = "${var.name}/encryption-key-"
  description             = "FLEETFLOW_ENCRYPTION_KEY (a Fernet key) of the fleetflow server: only the server reads it"
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = local.tags
}

resource "aws_secretsmanager_secret" "worker_api_key" {
  #checkov:skip=CKV_AWS_149:The AWS-managed key is enough here; pass worker_api_key_secret_arn to bring a CMK-encrypted secret.
  #checkov:skip=CKV2_AWS_57:API keys are rotated with `fleetflow api-key create/revoke`, not by Secrets Manager rotation.
  count = local.use_server && var.worker_api_key_secret_arn == null ? 1 : 0

  name_prefix             = "${var.name}/worker-api-key-"
  description             = "FLEETFLOW_API_KEY of the worker service (`fleetflow api-key create worker --scope worker`)"
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = local.tags
}

# The server's own roles: its execution role reads only the database URL and the encryption key;
# its task role needs no AWS permission (the store is PostgreSQL, results are read by clients).
data "aws_iam_policy_document" "server_assume" {
  count = local.use_server ? 1 : 0

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
  }
}

resource "aws_iam_role" "server_execution" {
  count = local.use_server ? 1 : 0

  name               = "${var.name}-server-execution"
  description        = "fleetflow server: ECS task execution role (image pull, logs, database URL and encryption key)"
  assume_role_policy = data.aws_iam_policy_document.server_assume[0].json

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.certificate_arn != null
      error_message = "create_server = true needs certificate_arn: the ACM certificate of the server's HTTPS listener (or set create_server = false for the direct-PostgreSQL path)."
    }
  }
}

data "aws_iam_policy_document" "server_execution" {
  count = local.use_server ? 1 : 0

  # GetAuthorizationToken has no resource-level permissions; "*" is the only valid resource.
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = ["arn:${local.partition}:ecr:${var.region}:${local.account_id}:repository/*"]
  }

  statement {
    sid       = "ContainerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${module.cluster.log_group_arn}:*"]
  }

  statement {
    sid       = "InjectSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [module.server[0].database_url_secret_arn, local.encryption_key_secret_arn]
  }
}

resource "aws_iam_role_policy" "server_execution" {
  count = local.use_server ? 1 : 0

  name   = "fleetflow-server-execution"
  role   = aws_iam_role.server_execution[0].id
  policy = data.aws_iam_policy_document.server_execution[0].json
}

resource "aws_iam_role" "server_task" {
  count = local.use_server ? 1 : 0

  name               = "${var.name}-server-task"
  description        = "fleetflow server: task role (no AWS permissions needed for the store)"
  assume_role_policy = data.aws_iam_policy_document.server_assume[0].json

  tags = local.tags
}

module "server" {
  source = "../../modules/server"
  count  = local.use_server ? 1 : 0

  name                      = var.name
  cluster_arn               = module.cluster.cluster_arn
  image                     = var.image
  vpc_id                    = local.vpc_id
  internal                  = var.server_internal
  public_subnet_ids         = var.server_internal ? local.subnet_ids : local.public_subnet_ids
  private_subnet_ids        = local.subnet_ids
  certificate_arn           = var.certificate_arn
  allowed_cidr_blocks       = var.server_allowed_cidr_blocks
  client_security_group_ids = [module.cluster.security_group_id]
  execution_role_arn        = aws_iam_role.server_execution[0].arn
  task_role_arn             = aws_iam_role.server_task[0].arn
  log_group_name            = module.cluster.log_group_name
  create_database           = var.create_database
  database_url_secret_arn   = var.create_database ? null : local.database_url_secret_arn
  encryption_key_secret_arn = local.encryption_key_secret_arn
  desired_count             = var.server_desired_count
  environment               = var.server_environment
  deletion_protection       = var.deletion_protection
  tags                      = local.tags
}
