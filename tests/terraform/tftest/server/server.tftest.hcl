# The server's container definition and load balancer wiring, planned on a mock provider.

mock_provider "aws" {}

variables {
  name                      = "ff"
  cluster_arn               = "arn:aws:ecs:eu-west-1:111122223333:cluster/flows"
  image                     = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/fleetflow:1.2.3"
  vpc_id                    = "vpc-1"
  public_subnet_ids         = ["subnet-a", "subnet-b"]
  private_subnet_ids        = ["subnet-c", "subnet-d"]
  certificate_arn           = "arn:aws:acm:eu-west-1:111122223333:certificate/abc"
  client_security_group_ids = ["sg-tasks"]
  execution_role_arn        = "arn:aws:iam::111122223333:role/ff-execution"
  task_role_arn             = "arn:aws:iam::111122223333:role/ff-server"
  log_group_name            = "/fleetflow/flows"
  encryption_key_secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:ff/key-AbCdEf"
  create_database           = false
  database_url_secret_arn   = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:ff/db-AbCdEf"
}

run "runs_fleetflow_server_start_with_secrets_as_references" {
  command = plan

  assert {
    condition     = output.container_definition.command == ["fleetflow", "server", "start", "--host", "0.0.0.0", "--port", "4200"]
    error_message = "The service must run `fleetflow server start` on the API port."
  }

  assert {
    condition = output.container_definition.secrets == [
      { name = "FLEETFLOW_DATABASE_URL", valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:ff/db-AbCdEf" },
      { name = "FLEETFLOW_ENCRYPTION_KEY", valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:ff/key-AbCdEf" },
    ]
    error_message = "The database URL and the encryption key reach the server as ECS secrets only."
  }

  assert {
    condition     = length([for e in output.container_definition.environment : e if startswith(e.name, "FLEETFLOW_DATABASE") || e.name == "FLEETFLOW_ENCRYPTION_KEY"]) == 0
    error_message = "No secret appears in plain environment variables."
  }
}

run "health_check_is_the_unauthenticated_route" {
  command = plan

  assert {
    condition     = output.health_check_path == "/api/health"
    error_message = "The ALB must check /api/health (every other route needs a key)."
  }
}
