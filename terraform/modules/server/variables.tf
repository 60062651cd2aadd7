variable "name" {
  description = "Prefix of every resource of the server (<name>-server, <name>-server-alb ...)."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the server service runs in."
  type        = string
}

variable "image" {
  description = "fleetflow runtime image (infra/Dockerfile); the service runs `fleetflow server start` from it."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the load balancer, the server tasks and the database."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer (public for an internet-facing ALB, private with internal = true)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets of the server tasks and of the database (at least two AZs for RDS)."
  type        = list(string)
}

variable "internal" {
  description = "Whether the ALB is internal (reachable only inside the VPC); flow-run tasks and workers usually are."
  type        = bool
  default     = true
}

variable "certificate_arn" {
  description = "ACM certificate ARN of the HTTPS listener (443). Port 80 only redirects to it."
  type        = string
}

variable "allowed_cidr_blocks" {
  description = "CIDR blocks allowed to reach the ALB besides the flow-run and worker security groups (e.g. your office)."
  type        = list(string)
  default     = []
}

variable "client_security_group_ids" {
  description = "Security groups of flow-run tasks and workers: allowed to reach the ALB on 443."
  type        = list(string)
  default     = []
}

variable "execution_role_arn" {
  description = "Task execution role (pulls the image, reads the secrets below, writes logs)."
  type        = string
}

variable "task_role_arn" {
  description = "Role of the server task itself (it needs no AWS permissions for the store; add them for S3 result reads)."
  type        = string
}

variable "log_group_name" {
  description = "CloudWatch log group of the server's container logs."
  type        = string
}

variable "create_database" {
  description = "Create an encrypted RDS PostgreSQL in the private subnets, its password in Secrets Manager, and point the server at it."
  type        = bool
  default     = true
}

variable "database_url_secret_arn" {
  description = "With create_database = false: Secrets Manager ARN holding FLEETFLOW_DATABASE_URL of an existing PostgreSQL."
  type        = string
  default     = null
}

variable "encryption_key_secret_arn" {
  description = "Secrets Manager ARN holding FLEETFLOW_ENCRYPTION_KEY (a Fernet key): only the server ever reads it."
  type        = string
}

variable "database_instance_class" {
  description = "RDS instance class of the created database."
  type        = string
  default     = "db.t3.micro"
}

variable "database_allocated_storage" {
  description = "Storage of the created database, in GiB."
  type        = number
  default     = 20
}

variable "database_parameter_group_family" {
  description = "Parameter group family of the created database's engine version (e.g. postgres16)."
  type        = string
  default     = "postgres16"
}

variable "kms_key_arn" {
  description = "KMS key for RDS storage, Performance Insights and the database secret (null: AWS-managed keys)."
  type        = string
  default     = null
}

variable "cpu" {
  description = "Fargate CPU units of a server task (512 = 0.5 vCPU)."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Fargate memory of a server task, in MiB."
  type        = number
  default     = 1024
}

variable "desired_count" {
  description = "Server tasks behind the ALB (request ids and claims are safe across several)."
  type        = number
  default     = 1
}

variable "environment" {
  description = "Plain (non-secret) environment of the server, e.g. FLEETFLOW_RESULT_STORAGE = \"s3/results\"."
  type        = map(string)
  default     = {}
}

variable "access_logs_bucket" {
  description = "S3 bucket for ALB access logs (null: none)."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the ALB and the database from deletion (turn off to destroy test stacks)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
