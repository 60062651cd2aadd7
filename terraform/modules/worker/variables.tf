variable "name" {
  description = "Prefix of the worker's task-definition family and service name (<name>-worker)."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the worker service runs in."
  type        = string
}

variable "image" {
  description = "fleetflow runtime image (infra/Dockerfile) the worker runs; it must contain the `fleetflow` command."
  type        = string
}

variable "work_pool_name" {
  description = "Work pool the worker polls (`fleetflow worker start --pool <work_pool_name>`)."
  type        = string
}

variable "extra_args" {
  description = "Extra arguments appended to `fleetflow worker start --pool <pool>`."
  type        = list(string)
  default     = []
}

variable "environment" {
  description = "Plain (non-secret) environment variables of the worker, e.g. FLEETFLOW_LOGGING_LEVEL. Never put credentials here: use secrets."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Secret environment variables of the worker: name -> Secrets Manager secret ARN or SSM parameter ARN, e.g. { FLEETFLOW_DATABASE_URL = <secret arn> }. The execution role must be allowed to read them."
  type        = map(string)
  default     = {}
}

variable "cpu" {
  description = "Fargate CPU units of the worker task (256 = 0.25 vCPU). The worker only waits on AWS and the orchestrator, so it stays small."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Memory (MiB) of the worker task; must be valid for the chosen cpu under Fargate's sizing rules."
  type        = number
  default     = 512
}

variable "desired_count" {
  description = "Number of worker tasks. More than one is safe: claims are atomic."
  type        = number
  default     = 1
}

variable "subnet_ids" {
  description = "Subnets of the worker tasks (private subnets with a NAT or VPC endpoints are recommended)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the worker tasks."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give worker tasks a public IP; only needed in public subnets without a NAT gateway."
  type        = bool
  default     = false
}

variable "execution_role_arn" {
  description = "Task execution role ARN (image pull, logs, secrets)."
  type        = string
}

variable "worker_role_arn" {
  description = "Task role ARN of the worker (the iam module's worker role)."
  type        = string
}

variable "log_group_name" {
  description = "CloudWatch log group the worker's output goes to (stream prefix `worker`)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
