resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enabled" : "disabled"
  }

  # Capacity providers are deliberately not set here: provider 3.x only accepts them as arguments
  # of aws_ecs_cluster, 5.x only as the separate aws_ecs_cluster_capacity_providers resource, so no
  # single form works across ">= 3.39, < 6.0". See README "Fargate Spot".

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest with AWS-owned keys already; a CMK needs a key policy naming the logs service, so it is opt-in via log_kms_key_arn.
  #checkov:skip=CKV_AWS_338:Retention is a cost decision left to log_retention_in_days (default 30 days: long enough to debug a run, short enough not to pay for years of flow logs).
  name              = coalesce(var.log_group_name, "/fleetflow/${var.name}")
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_kms_key_arn

  tags = var.tags
}

# One security group for every task the cluster runs (the worker service and the flow runs it
# launches): egress only, because nothing connects *to* a flow run; it calls out to AWS APIs, the
# image registry, S3 and the orchestrator.
resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:Attached through the security_group_id output to the worker service and to every flow run's RunTask networkConfiguration; checkov cannot follow module outputs or API calls.
  name_prefix = "${var.name}-tasks-"
  description = "fleetflow tasks in ECS cluster ${var.name}: egress only"
  vpc_id      = var.vpc_id

  dynamic "egress" {
    for_each = var.egress_rules
    content {
      description = egress.value.description
      protocol    = "tcp"
      from_port   = egress.value.port
      to_port     = egress.value.port
      cidr_blocks = egress.value.cidr_blocks
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-tasks" })

  # name_prefix + create_before_destroy lets a rule change replace the group without first
  # detaching it from running tasks.
  lifecycle {
    create_before_destroy = true
  }
}
