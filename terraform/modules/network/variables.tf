variable "name" {
  description = "Name tag of the VPC and prefix of its subnets' and route tables' Name tags."
  type        = string
}

variable "cidr" {
  description = "IPv4 range of the VPC."
  type        = string
  default     = "10.0.0.0/16"
}

variable "azs" {
  description = "Availability zones to spread subnets over (one public and one private subnet in each). At least two for resilience."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 1
    error_message = "Give at least one availability zone."
  }
}

variable "public_subnet_cidrs" {
  description = "IPv4 ranges of the public subnets, one per AZ. Empty means /20s carved from cidr."
  type        = list(string)
  default     = []
}

variable "private_subnet_cidrs" {
  description = "IPv4 ranges of the private subnets, one per AZ. Empty means /20s carved from cidr after the public ones."
  type        = list(string)
  default     = []
}

variable "enable_nat_gateway" {
  description = "Create one NAT gateway so tasks in private subnets can reach ECR, S3 and the orchestrator. Without it, add VPC endpoints or run tasks in public subnets with a public IP."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
