terraform {
  # 1.3: optional() object attributes with defaults.
  required_version = ">= 1.3"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 3.39 is what the offline test suite runs (see docs/terraform.md); 5.x is what users run.
      # Only resources and arguments present in both are used.
      version = ">= 3.39, < 6.0"
    }
  }
}
