provider "aws" {
  region = var.region

  # With aws_endpoint_url set, every service this example touches goes to one emulator (moto's
  # server, LocalStack): no instance-metadata lookup and no real STS credential check. Endpoint
  # names are the ones both provider 3.x and 5.x accept (5.x knows `cloudwatchlogs` as an alias
  # of `logs`). S3 path-style addressing has no such common name (3.x `s3_force_path_style`, 5.x
  # `s3_use_path_style`); set it in an override file, see README. Likewise ALBs: 3.x sends them to
  # `elb`, 5.x to `elbv2` (add `elbv2` to the override file on 5.x).
  skip_credentials_validation = var.aws_endpoint_url != null
  skip_metadata_api_check     = var.aws_endpoint_url != null

  dynamic "endpoints" {
    for_each = var.aws_endpoint_url == null ? [] : [var.aws_endpoint_url]
    content {
      cloudwatchlogs = endpoints.value
      ec2            = endpoints.value
      ecs            = endpoints.value
      elb            = endpoints.value
      iam            = endpoints.value
      rds            = endpoints.value
      s3             = endpoints.value
      secretsmanager = endpoints.value
      sts            = endpoints.value
    }
  }
}

locals {
  create_network = var.vpc_id == null
  use_server     = var.create_server
  tags           = merge({ Project = "fleetflow" }, var.tags)

  vpc_id            = local.create_network ? module.network[0].vpc_id : var.vpc_id
  vpc_cidr          = local.create_network ? module.network[0].vpc_cidr_block : data.aws_vpc.existing[0].cidr_block
  subnet_ids        = local.create_network ? module.network[0].private_subnet_ids : var.subnet_ids
  public_subnet_ids = local.create_network ? module.network[0].public_subnet_ids : coalescelist(var.public_subnet_ids, var.subnet_ids)

  # arn:<partition>:ecs:<region>:<account>:cluster/<name>, as in modules/iam: no data-source calls.
  partition  = split(":", module.cluster.cluster_arn)[1]
  account_id = split(":", module.cluster.cluster_arn)[4]

  # The example's own database-URL secret: the direct-PostgreSQL path's, or the server's when it
  # uses an existing PostgreSQL (create_database = false). None when the server creates its RDS.
  own_database_url_secret = var.database_url_secret_arn == null && !(local.use_server && var.create_database)
  database_url_secret_arn = try(coalesce(var.database_url_secret_arn, try(aws_secretsmanager_secret.database_url[0].arn, null)), null)

  encryption_key_secret_arn = try(coalesce(var.encryption_key_secret_arn, try(aws_secretsmanager_secret.encryption_key[0].arn, null)), null)
  worker_api_key_secret_arn = try(coalesce(var.worker_api_key_secret_arn, try(aws_secretsmanager_secret.worker_api_key[0].arn, null)), null)

  # With the server, the worker holds only its API key (a secret) and the server's URL; the
  # execution role shared by the worker and flow runs may read that one secret and nothing else.
  worker_secrets = local.use_server ? { FLEETFLOW_API_KEY = local.worker_api_key_secret_arn } : { FLEETFLOW_DATABASE_URL = local.database_url_secret_arn }
  worker_env     = local.use_server ? { FLEETFLOW_API_URL = module.server[0].api_url } : {}
}

# ---------------------------------------------------------------------------------------------
# Network: a new VPC unless vpc_id/subnet_ids name an existing one.
# ---------------------------------------------------------------------------------------------
data "aws_availability_zones" "available" {
  count = local.create_network ? 1 : 0
  state = "available"
}

module "network" {
  source = "../../modules/network"
  count  = local.create_network ? 1 : 0

  name               = var.name
  azs                = slice(data.aws_availability_zones.available[0].names, 0, 2)
  enable_nat_gateway = var.enable_nat_gateway
  tags               = local.tags
}

data "aws_vpc" "existing" {
  count = local.create_network ? 0 : 1
  id    = var.vpc_id
}

# ---------------------------------------------------------------------------------------------
# Where flow runs execute, where their code and results live, and who may do what.
# ---------------------------------------------------------------------------------------------
module "cluster" {
  source = "../../modules/cluster"

  name                  = var.name
  vpc_id                = local.vpc_id
  log_retention_in_days = var.log_retention_in_days
  # HTTPS covers the server's ALB too; the orchestrator rule is for the direct-PostgreSQL path.
  egress_rules = merge({
    https = {
      port        = 443
      cidr_blocks = ["0.0.0.0/0"]
      description = "HTTPS to AWS APIs, ECR image pulls, S3 bundles and results, the fleetflow server"
    }
    }, local.use_server ? {} : {
    orchestrator = {
      port        = var.orchestrator_port
      cidr_blocks = coalesce(var.orchestrator_cidr_blocks, [local.vpc_cidr])
      description = "fleetflow orchestrator (PostgreSQL)"
    }
  })
  tags = local.tags
}

module "code_bucket" {
  source = "../../modules/code-bucket"

  bucket_name   = var.bucket_name
  bucket_prefix = "${var.name}-code-"
  force_destroy = var.bucket_force_destroy
  tags          = local.tags
}

# Only the secret's *container* is created: its value (the database URL with a password) is
# put with `aws secretsmanager put-secret-value` so it never enters Terraform state or a plan.
resource "aws_secretsmanager_secret" "database_url" {
  #checkov:skip=CKV_AWS_149:The AWS-managed key is enough for one connection string; pass database_url_secret_arn to bring a CMK-encrypted secret.
  #checkov:skip=CKV2_AWS_57:Rotation belongs to whoever owns the database password, not to this example.
  count = local.own_database_url_secret ? 1 : 0

  name_prefix             = "${var.name}/database-url-"
  description             = local.use_server ? "FLEETFLOW_DATABASE_URL of the fleetflow server (only the server reads it)" : "fleetflow orchestrator URL (FLEETFLOW_DATABASE_URL) for the worker and flow runs"
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = local.tags
}

module "iam" {
  source = "../../modules/iam"

  name           = var.name
  cluster_arn    = module.cluster.cluster_arn
  log_group_arn  = module.cluster.log_group_arn
  bucket_arn     = module.code_bucket.bucket_arn
  bundles_prefix = module.code_bucket.bundles_prefix
  results_prefix = module.code_bucket.results_prefix
  secret_arns    = values(local.worker_secrets)
  tags           = local.tags
}

# ---------------------------------------------------------------------------------------------
# The worker that turns scheduled sub-flow runs of the pool into ECS tasks.
# ---------------------------------------------------------------------------------------------
module "worker" {
  source = "../../modules/worker"

  name               = var.name
  cluster_arn        = module.cluster.cluster_arn
  image              = var.image
  work_pool_name     = var.work_pool_name
  desired_count      = var.worker_desired_count
  subnet_ids         = local.subnet_ids
  security_group_ids = [module.cluster.security_group_id]
  assign_public_ip   = var.assign_public_ip
  execution_role_arn = module.iam.execution_role_arn
  worker_role_arn    = module.iam.worker_role_arn
  log_group_name     = module.cluster.log_group_name
  environment        = merge(local.worker_env, var.worker_environment)
  secrets            = merge(local.worker_secrets, var.worker_secrets)
  tags               = local.tags
}
