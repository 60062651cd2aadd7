variable "name" {
  description = "Name of the ECS cluster; also the default suffix of the log group and the prefix of the security group."
  type        = string
}

variable "vpc_id" {
  description = "VPC the tasks' security group belongs to (the VPC of the subnets the tasks run in)."
  type        = string
}

variable "container_insights" {
  description = "Enable CloudWatch Container Insights (per-task CPU/memory metrics; useful to size sub-flows)."
  type        = bool
  default     = true
}

variable "log_group_name" {
  description = "Name of the CloudWatch log group for worker and flow-run containers. Null means /fleetflow/<name>."
  type        = string
  default     = null
}

variable "log_retention_in_days" {
  description = "Days CloudWatch keeps worker and flow-run logs (one of the values CloudWatch accepts, e.g. 7, 30, 90, 365)."
  type        = number
  default     = 30
}

variable "log_kms_key_arn" {
  description = "KMS key ARN to encrypt the log group with. Null means CloudWatch's default encryption."
  type        = string
  default     = null
}

variable "egress_rules" {
  description = "Outbound TCP rules of the tasks' security group, by name. The default allows HTTPS only (AWS APIs, ECR, S3); add your orchestrator's port (PostgreSQL 5432 or the fleetflow server's port)."
  type = map(object({
    port        = number
    cidr_blocks = list(string)
    description = string
  }))
  default = {
    https = {
      port        = 443
      cidr_blocks = ["0.0.0.0/0"]
      description = "HTTPS to AWS APIs, ECR image pulls, S3 bundles and results"
    }
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
