variable "region" {
  description = "AWS region of everything this example creates."
  type        = string
  default     = "us-east-1"
}

variable "aws_endpoint_url" {
  description = "Send every AWS call to this URL (moto's server, LocalStack) instead of AWS. Null means real AWS."
  type        = string
  default     = null
}

variable "name" {
  description = "Name (and name prefix) of the cluster, roles, worker service, VPC and secret. Lowercase letters, digits and hyphens."
  type        = string
  default     = "fleetflow"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}$", var.name))
    error_message = "The name must be 1-23 lowercase letters, digits or hyphens, starting with a letter (it prefixes the bucket name)."
  }
}

variable "image" {
  description = "fleetflow runtime image (built from infra/Dockerfile) for the worker; flow runs use it too unless a deployment overrides it."
  type        = string
  default     = "fleetflow/fleetflow:0.1.0-python3.11"
}

variable "work_pool_name" {
  description = "Work pool the worker polls; register-blocks creates it with the ECSTask block built from these outputs."
  type        = string
  default     = "ecs"
}

variable "vpc_id" {
  description = "Existing VPC to use. Null creates a VPC with public and private subnets (modules/network)."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Existing subnets for the worker and flow runs (required with vpc_id, ignored without it)."
  type        = list(string)
  default     = []
}

variable "assign_public_ip" {
  description = "Give tasks public IPs; only for public subnets without a NAT gateway."
  type        = bool
  default     = false
}

variable "enable_nat_gateway" {
  description = "With a new VPC, create a NAT gateway so tasks in private subnets reach ECR, S3 and the orchestrator."
  type        = bool
  default     = true
}

variable "orchestrator_port" {
  description = "TCP port of the orchestrator the worker and flow runs connect to (5432 for PostgreSQL)."
  type        = number
  default     = 5432
}

variable "orchestrator_cidr_blocks" {
  description = "Where the orchestrator lives, for the tasks' egress rule. Null means anywhere in the VPC."
  type        = list(string)
  default     = null
}

variable "database_url_secret_arn" {
  description = "Existing Secrets Manager secret holding FLEETFLOW_DATABASE_URL. Null creates an empty secret to fill in after apply."
  type        = string
  default     = null
}

variable "secret_recovery_window_in_days" {
  description = "Days a deleted database-URL secret can still be restored (0 deletes at once)."
  type        = number
  default     = 7
}

variable "worker_desired_count" {
  description = "Number of worker tasks."
  type        = number
  default     = 1
}

variable "worker_environment" {
  description = "Extra plain environment variables of the worker (no secrets)."
  type        = map(string)
  default     = {}
}

variable "worker_secrets" {
  description = "Extra secret environment variables of the worker: name -> secret or SSM parameter ARN (the execution role must be able to read them; see modules/iam secret_arns)."
  type        = map(string)
  default     = {}
}

variable "bucket_name" {
  description = "Exact name of the code bucket. Null generates <name>-code-<random>."
  type        = string
  default     = null
}

variable "bucket_force_destroy" {
  description = "Let terraform destroy delete the code bucket with its bundles and results. Keep false outside tests."
  type        = bool
  default     = false
}

variable "log_retention_in_days" {
  description = "Days CloudWatch keeps worker and flow-run logs."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource (merged over Project = fleetflow)."
  type        = map(string)
  default     = {}
}

# ---- the fleetflow server (modules/server) ----------------------------------------------------

variable "create_server" {
  description = "Run the fleetflow server (ECS service behind an HTTPS ALB): workers and flow runs then use FLEETFLOW_API_URL and API keys, never a database URL. False keeps the direct-PostgreSQL path."
  type        = bool
  default     = true
}

variable "certificate_arn" {
  description = "ACM certificate ARN of the server's HTTPS listener (required with create_server)."
  type        = string
  default     = null
}

variable "create_database" {
  description = "With create_server: create an encrypted RDS PostgreSQL for the server (password in Secrets Manager). False: put the URL of an existing PostgreSQL in database_url_secret_arn (or the secret this example creates)."
  type        = bool
  default     = true
}

variable "server_internal" {
  description = "Keep the server's ALB internal (reachable only inside the VPC, in the private subnets); false puts it in the public subnets."
  type        = bool
  default     = true
}

variable "public_subnet_ids" {
  description = "With an existing VPC and server_internal = false: the ALB's public subnets (empty: subnet_ids)."
  type        = list(string)
  default     = []
}

variable "server_allowed_cidr_blocks" {
  description = "CIDR blocks allowed to reach the server's ALB on 443 besides the worker and flow runs (e.g. your office or VPN)."
  type        = list(string)
  default     = []
}

variable "server_desired_count" {
  description = "Number of server tasks behind the ALB."
  type        = number
  default     = 1
}

variable "server_environment" {
  description = "Extra plain environment variables of the server (no secrets)."
  type        = map(string)
  default     = {}
}

variable "encryption_key_secret_arn" {
  description = "Existing Secrets Manager secret holding FLEETFLOW_ENCRYPTION_KEY (a Fernet key) for the server. Null creates an empty secret to fill in after apply."
  type        = string
  default     = null
}

variable "worker_api_key_secret_arn" {
  description = "Existing Secrets Manager secret holding the worker's FLEETFLOW_API_KEY (scope worker). Null creates an empty secret to fill in after apply."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the server's ALB and database from deletion; turn off for test stacks you destroy."
  type        = bool
  default     = true
}
