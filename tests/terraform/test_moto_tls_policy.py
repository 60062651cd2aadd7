"""moto's handling of the code bucket's TLS-only policy: why the proof lifts it while flows run.

Its own module, apart from the tests sharing an apply: it creates a bucket in moto's process-wide
state, which a shared apply's destroy check ("no bucket left") would see.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.terraform, pytest.mark.aws]


def test_moto_applies_the_tls_only_bucket_policy_to_https_requests_too() -> None:
    """Why the proof lifts the code bucket's policy instead of serving moto over TLS.

    The code-bucket module's statement (Deny s3:* when aws:SecureTransport is false) must let
    HTTPS requests through; moto 5.2 evaluates it without request context and denies them all.
    If this test fails, moto has learnt aws:SecureTransport: run the proof against
    ``tls_moto.tls_moto_server`` (terraform provider ``insecure = true``, clients with
    ``verify=False``) and drop ``bucket_policy_suspended``.
    """
    import json
    import warnings

    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from tls_moto import tls_moto_server

    with tls_moto_server() as url, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # urllib3's InsecureRequestWarning for the self-signed cert
        s3 = boto3.client("s3", endpoint_url=url, verify=False, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="tls-only-code")
        s3.put_object(Bucket="tls-only-code", Key="bundles/a", Body=b"a")  # no policy yet: fine over HTTPS
        s3.put_bucket_policy(Bucket="tls-only-code", Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": ["arn:aws:s3:::tls-only-code", "arn:aws:s3:::tls-only-code/*"],
                "Condition": {"Bool": {"aws:SecureTransport": ["false"]}},
            }],
        }))
        with pytest.raises(ClientError) as denied:
            s3.get_object(Bucket="tls-only-code", Key="bundles/a")
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
