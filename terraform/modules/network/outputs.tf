output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 range of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "IDs of the public subnets (they hold the NAT gateway)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, where the worker and flow runs should run."
  value       = aws_subnet.private[*].id
}

output "nat_public_ips" {
  description = "Public IPs of the NAT gateway (allow-list them at the orchestrator if it is outside AWS)."
  value       = aws_eip.this[*].public_ip
}
