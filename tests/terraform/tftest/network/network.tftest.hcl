mock_provider "aws" {}

variables {
  name = "ff"
  azs  = ["eu-west-1a", "eu-west-1b"]
}

run "two_tiers_per_az_without_overlap" {
  command = plan

  assert {
    condition     = aws_subnet.public[*].cidr_block == ["10.0.0.0/20", "10.0.16.0/20"]
    error_message = "Public subnets are the first /20s."
  }

  assert {
    condition     = aws_subnet.private[*].cidr_block == ["10.0.32.0/20", "10.0.48.0/20"]
    error_message = "Private subnets follow the public ones."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.public : s.map_public_ip_on_launch == false])
    error_message = "Nothing gets a public IP implicitly."
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_route.private_nat) == 1
    error_message = "One NAT gateway serves the private subnets by default."
  }
}

run "without_nat" {
  command = plan

  variables {
    enable_nat_gateway = false
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 0 && length(aws_eip.this) == 0 && length(aws_route.private_nat) == 0
    error_message = "enable_nat_gateway = false creates no NAT gateway, EIP or route."
  }
}
