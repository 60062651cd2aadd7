"""Everything AWS: ECS tasks, credentials and S3 (``prefect_aws`` -> ``fleetflow.aws``).

Curated exports; importing this package must not import boto3 (the launcher and S3 helpers
import it lazily), so ``ECSTask(...).preview()`` works without the ``aws`` extra.
"""

from .credentials import AwsClientParameters, AwsCredentials
from .ecs import ECSTask, validate_ecs_task
from .s3 import S3, S3Bucket

__all__ = ["AwsClientParameters", "AwsCredentials", "ECSTask", "S3", "S3Bucket", "validate_ecs_task"]
