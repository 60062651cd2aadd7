mock_provider "aws" {}

variables {
  name   = "flows"
  vpc_id = "vpc-123"
}

run "defaults" {
  command = plan

  assert {
    condition     = aws_cloudwatch_log_group.this.name == "/fleetflow/flows" && aws_cloudwatch_log_group.this.retention_in_days == 30
    error_message = "The log group defaults to /fleetflow/<name> with 30 days retention."
  }

  assert {
    condition     = one(aws_ecs_cluster.this.setting).value == "enabled"
    error_message = "Container Insights is on by default."
  }

  assert {
    condition     = [for e in aws_security_group.this.egress : [e.from_port, e.to_port, e.protocol]] == [[443, 443, "tcp"]]
    error_message = "By default tasks may only make HTTPS connections."
  }
}

run "custom_log_group_and_egress" {
  command = plan

  variables {
    log_group_name        = "/custom/logs"
    log_retention_in_days = 7
    container_insights    = false
    egress_rules = {
      postgres = { port = 5432, cidr_blocks = ["10.0.0.0/16"], description = "orchestrator" }
    }
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.name == "/custom/logs" && aws_cloudwatch_log_group.this.retention_in_days == 7
    error_message = "log_group_name and log_retention_in_days are honoured."
  }

  assert {
    condition     = one(aws_ecs_cluster.this.setting).value == "disabled"
    error_message = "container_insights = false disables Container Insights."
  }

  assert {
    condition     = [for e in aws_security_group.this.egress : "${e.from_port}:${join(",", e.cidr_blocks)}"] == ["5432:10.0.0.0/16"]
    error_message = "egress_rules replaces the default rules."
  }
}
