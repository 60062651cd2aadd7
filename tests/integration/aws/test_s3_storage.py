"""S3 and S3Bucket storage blocks against a real moto server, through s3fs.

Requests are counted on s3fs's own aiobotocore client (``block.filesystem.s3``) with
botocore's ``before-send`` event, which fires once per request actually sent. Errors are
injected at the same point as real HTTP error responses, so botocore parses them, s3fs
translates them and our retry policy classifies them exactly as it would S3's.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from aws_server import boto3_client, counting, credentials_for
from fleetflow.aws import s3 as s3_module
from fleetflow.aws.credentials import AwsCredentials
from fleetflow.aws.s3 import S3, S3Bucket, is_transient_error
from fleetflow.blocks import Block
from fleetflow.orchestrator import Orchestrator
from fleetflow.bundles import build_bundle, fetch_bundle, upload_bundle
from fleetflow.exceptions import (
    AwsError,
    BlockValidationError,
    BundleDigestMismatch,
    BundleError,
    ConfigurationError,
)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NO_BOTOCORE_RETRIES = {"config": {"retries": {"total_max_attempts": 1}}}


@pytest.fixture(params=["s3", "s3-bucket"])
def store(request, aws_credentials, bucket):
    """Each storage block, on the moto bucket under a prefix."""
    if request.param == "s3":
        return S3(bucket_path=f"{bucket}/code", credentials=aws_credentials)
    return S3Bucket(bucket_name=bucket, bucket_folder="code", credentials=aws_credentials)


def no_botocore_retries(store, aws_env):
    """The same block with botocore's own retries off, so only our policy retries."""
    creds = credentials_for(aws_env.url, aws_client_parameters=NO_BOTOCORE_RETRIES)
    return store.model_copy(update={"credentials": creds})


def make_project(root: Path, files: int = 20) -> Path:
    for i in range(files):
        path = root / f"pkg{i % 4}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VALUE = {i}\n")
    (root / "flows.py").write_text("def main():\n    return 42\n")
    return root


def object_keys(aws_env, bucket: str) -> list[str]:
    listed = boto3_client(aws_env.url, "s3").list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


# --- the bundle store interface -----------------------------------------------------------------
def test_put_get_exists_round_trip(store, aws_env, bucket):
    assert not store.exists("a/b.bin")
    store.put_bytes("a/b.bin", b"\x00payload")
    assert store.exists("a/b.bin")
    assert store.get_bytes("a/b.bin") == b"\x00payload"
    assert object_keys(aws_env, bucket) == ["code/a/b.bin"]


def test_missing_key_raises_file_not_found(store):
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        store.get_bytes("missing.bin")


def test_missing_bucket_is_an_aws_error_not_a_missing_key(aws_credentials):
    store = S3(bucket_path="no-such-bucket", credentials=aws_credentials)
    with pytest.raises(AwsError) as caught:
        store.put_bytes("k", b"1")
    assert caught.value.code == "NoSuchBucket" and caught.value.operation == "PutObject"
    assert isinstance(caught.value.__cause__, ClientError)
    assert "create the bucket" in str(caught.value)


@pytest.mark.parametrize("key", ["", "/abs", "../escape", "a/../../b", "win\\path"])
def test_unsafe_keys_are_refused(store, key):
    with pytest.raises(BundleError):
        store.put_bytes(key, b"1")


def test_bundle_upload_is_one_put_and_skipped_when_present(store, aws_env, bucket, tmp_path):
    bundle = build_bundle(make_project(tmp_path / "project"))
    with counting(store.filesystem.s3) as requests:
        assert upload_bundle(bundle, store) is True
    assert requests["PutObject"] == 1
    assert requests.total == 2  # HeadObject (absent) + PutObject
    assert object_keys(aws_env, bucket) == [f"code/{bundle.key}"]

    with counting(store.filesystem.s3) as requests:
        assert upload_bundle(bundle, store) is False
    assert dict(requests.counts) == {"HeadObject": 1}


def test_bundle_fetch_is_one_get_and_verifies_the_digest(store, tmp_path):
    project = make_project(tmp_path / "project")
    bundle = build_bundle(project)
    upload_bundle(bundle, store)

    with counting(store.filesystem.s3) as requests:
        fetched = fetch_bundle(bundle.digest, store, tmp_path / "cache")
    assert dict(requests.counts) == {"GetObject": 1}
    assert (fetched / "flows.py").read_text() == (project / "flows.py").read_text()
    assert (fetched / "pkg3" / "module_19.py").read_text() == "VALUE = 19\n"

    with counting(store.filesystem.s3) as requests:  # cached by digest: no request at all
        assert fetch_bundle(bundle.digest, store, tmp_path / "cache") == fetched
    assert requests.total == 0


def test_tampered_bundle_is_rejected(store, tmp_path):
    bundle = build_bundle(make_project(tmp_path / "project"))
    store.put_bytes(bundle.key, build_bundle(make_project(tmp_path / "other", files=3)).data)
    with pytest.raises(BundleDigestMismatch):
        fetch_bundle(bundle.digest, store, tmp_path / "cache")


def test_fetching_a_bundle_never_uploaded_says_so(store, tmp_path):
    with pytest.raises(BundleError, match="re-apply the deployment"):
        fetch_bundle("0" * 64, store, tmp_path / "cache")


# --- retries ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError"), (400, "RequestTimeout")])
def test_transient_error_responses_are_retried(store, aws_env, status, code):
    store = no_botocore_retries(store, aws_env)
    store.put_bytes("k", b"data")
    with counting(store.filesystem.s3) as requests:
        requests.fail_next("GetObject", status=status, code=code)
        assert store.get_bytes("k") == b"data"
    assert requests["GetObject"] == 2


def test_throttled_upload_is_retried(store, aws_env, bucket):
    store = no_botocore_retries(store, aws_env)
    with counting(store.filesystem.s3) as requests:
        requests.fail_next("PutObject", status=503, code="SlowDown", times=2)
        store.put_bytes("k", b"data")
    assert requests["PutObject"] == 3
    assert object_keys(aws_env, bucket) == ["code/k"]


def test_dropped_connection_is_retried(store, aws_env):
    store = no_botocore_retries(store, aws_env)
    store.put_bytes("k", b"data")
    with counting(store.filesystem.s3) as requests:
        requests.raise_next("GetObject", EndpointConnectionError(endpoint_url=aws_env.url))
        assert store.get_bytes("k") == b"data"
    assert requests["GetObject"] == 2


def test_botocore_retries_come_first(store, aws_env):
    """With botocore's retry mode on (the default), a single 503 never reaches our policy."""
    store.put_bytes("k", b"data")
    with counting(store.filesystem.s3) as requests:
        requests.fail_next("GetObject", status=503, code="SlowDown")
        assert store.get_bytes("k") == b"data"
    assert requests["GetObject"] == 2


@pytest.mark.parametrize(("status", "code"), [(403, "AccessDenied"), (400, "InvalidRequest")])
def test_client_errors_are_not_retried(store, aws_env, status, code):
    store = no_botocore_retries(store, aws_env)
    store.put_bytes("k", b"data")
    with counting(store.filesystem.s3) as requests:
        requests.fail_next("GetObject", status=status, code=code, times=5)
        with pytest.raises(AwsError) as caught:
            store.get_bytes("k")
    assert requests["GetObject"] == 1
    assert (caught.value.operation, caught.value.code) == ("GetObject", code)
    assert isinstance(caught.value.__cause__, ClientError)


def test_missing_key_is_not_retried(store, aws_env):
    with counting(store.filesystem.s3) as requests:
        with pytest.raises(FileNotFoundError):
            store.get_bytes("missing")
    assert dict(requests.counts) == {"GetObject": 1}


def test_forbidden_head_explains_the_list_bucket_quirk(store, aws_env):
    store = no_botocore_retries(store, aws_env)
    with counting(store.filesystem.s3) as requests:
        requests.fail_next("HeadObject", status=403, code="403")
        with pytest.raises(AwsError, match="s3:ListBucket"):
            store.exists("k")


def test_unreachable_endpoint_gives_up_after_the_retry_budget(bucket):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    creds = credentials_for(f"http://127.0.0.1:{port}", aws_client_parameters=NO_BOTOCORE_RETRIES)
    store = S3(bucket_path=bucket, credentials=creds)
    with counting(store.filesystem.s3) as requests:
        with pytest.raises(AwsError) as caught:
            store.get_bytes("k")
    assert requests["GetObject"] == s3_module.RETRY_ATTEMPTS
    assert isinstance(caught.value.__cause__, EndpointConnectionError)


def test_transient_classification():
    def client_error(status: int, code: str) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    assert is_transient_error(client_error(503, "SlowDown"))
    assert is_transient_error(client_error(500, "InternalError"))
    assert is_transient_error(client_error(400, "ThrottlingException"))
    assert not is_transient_error(client_error(403, "AccessDenied"))
    assert not is_transient_error(client_error(404, "NoSuchKey"))
    wrapped = OSError(16, "busy")
    wrapped.__cause__ = client_error(503, "SlowDown")  # how s3fs re-raises it
    assert is_transient_error(wrapped)
    assert is_transient_error(EndpointConnectionError(endpoint_url="http://x"))
    assert not is_transient_error(ValueError("bad argument"))


# --- results ------------------------------------------------------------------------------------
def test_results_round_trip_under_results_prefix(store, aws_env, bucket):
    store.write_result("run-1/return", b"pickled")
    assert store.read_result("run-1/return") == b"pickled"
    assert object_keys(aws_env, bucket) == ["code/results/run-1/return"]


def test_describe_and_location(store, temp_store, bucket):
    assert store.location() == f"s3://{bucket}/code"
    assert store.describe() == {"type": "s3", "url": f"s3://{bucket}/code/results"}
    store.save("results", client=temp_store)
    described = store.describe()
    assert described == {"type": "block", "block": f"{store.get_block_type_slug()}/results"}
    store.write_result("r", b"value")
    assert Block.load(described["block"], client=temp_store).read_result("r") == b"value"


# --- saving and loading -------------------------------------------------------------------------
def test_s3_save_load_round_trip_with_encrypted_secrets(temp_store, temp_store_url, aws_env, bucket):
    creds = credentials_for(aws_env.url, aws_access_key_id="AKIAS3", aws_secret_access_key=SECRET)
    S3(bucket_path=f"{bucket}/prod", credentials=creds).save("code", client=temp_store)
    shorthand = S3(bucket_path=f"{bucket}/p", aws_access_key_id="AKIASHORT", aws_secret_access_key=SECRET)
    shorthand.save("shorthand", client=temp_store)

    at_rest = Orchestrator.create(temp_store_url)  # what the database holds
    try:
        for name in ("code", "shorthand"):
            raw = json.dumps(at_rest.read_block_document("s3", name).data)
            assert SECRET not in raw and "AKIASHORT" not in raw  # Prefect's S3 keeps both keys secret
    finally:
        at_rest.dispose()
    loaded = S3.load("code", client=temp_store)
    assert loaded.credentials.aws_secret_access_key.get_secret_value() == SECRET
    loaded.put_bytes("k", b"1")
    assert S3.load("code", client=temp_store).get_bytes("k") == b"1"
    assert S3.load("shorthand", client=temp_store).aws_secret_access_key.get_secret_value() == SECRET


def test_s3_bucket_save_load_round_trip(temp_store, aws_credentials, bucket):
    S3Bucket(bucket_name=bucket, bucket_folder="flows", credentials=aws_credentials).save("b", client=temp_store)
    loaded = S3Bucket.load("b", client=temp_store)
    assert (loaded.bucket_name, loaded.bucket_folder) == (bucket, "flows")
    assert loaded.credentials == aws_credentials
    loaded.put_bytes("k", b"2")
    assert loaded.get_bytes("k") == b"2"


def test_prefect_shorthand_reaches_the_endpoint_from_the_environment(aws_env, bucket, monkeypatch):
    """``S3(bucket_path, aws_access_key_id, aws_secret_access_key)`` as in Prefect; the endpoint
    comes from AWS_ENDPOINT_URL, which botocore honours for every client."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env.url)
    store = S3(bucket_path=f"s3://{bucket}/x", aws_access_key_id="AKIASHORT", aws_secret_access_key=SECRET)
    assert store.bucket_path == f"{bucket}/x"
    store.put_bytes("k", b"3")
    assert store.get_bytes("k") == b"3"
    assert store.filesystem.key == "AKIASHORT"


def test_secrets_masked_in_repr_and_masked_dict(aws_credentials):
    store = S3(bucket_path="b/p", aws_access_key_id="AKIASHORT", aws_secret_access_key=SECRET)
    assert SECRET not in repr(store) and "AKIASHORT" not in repr(store)
    assert store.masked_dict()["aws_secret_access_key"] == "********"
    nested = S3Bucket(
        bucket_name="b", credentials=AwsCredentials(aws_access_key_id="AKIA", aws_secret_access_key=SECRET)
    )
    assert SECRET not in repr(nested) and SECRET not in json.dumps(nested.masked_dict())


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (S3, {"bucket_path": ""}),
        (S3, {"bucket_path": "b", "aws_access_key_id": "A", "aws_secret_access_key": "s", "credentials": {}}),
        (S3, {"bucket_path": "b", "bucket": "typo"}),
        (S3Bucket, {"bucket_name": "b/folder"}),
    ],
)
def test_invalid_blocks_are_rejected(cls, fields):
    with pytest.raises(BlockValidationError):
        cls(**fields)


def test_prefect_import_path():
    from fleetflow import filesystems

    assert filesystems.S3 is S3 and filesystems.S3Bucket is S3Bucket


# --- one filesystem per block -------------------------------------------------------------------
def test_filesystem_is_cached_per_block_and_follows_credential_changes(aws_env, bucket):
    store = S3Bucket(bucket_name=bucket, credentials=credentials_for(aws_env.url))
    first = store.filesystem
    assert store.filesystem is first
    store.credentials = credentials_for(aws_env.url, region_name="eu-west-1")
    assert store.filesystem is not first
    assert store.filesystem.s3.meta.region_name == "eu-west-1"


def test_blocks_with_different_keys_never_share_a_filesystem(aws_env, bucket):
    def keyed(key_id: str) -> S3:
        creds = credentials_for(aws_env.url, aws_access_key_id=key_id, aws_secret_access_key="secret")
        return S3(bucket_path=bucket, credentials=creds)

    one, two = keyed("AKIAONE"), keyed("AKIATWO")
    assert one.filesystem is not two.filesystem
    assert (one.filesystem.key, two.filesystem.key) == ("AKIAONE", "AKIATWO")


# --- put_directory / get_directory (Prefect compatibility) --------------------------------------
def test_put_and_get_directory_round_trip(store, aws_env, bucket, tmp_path):
    project = make_project(tmp_path / "project", files=12)
    (project / "data.csv").write_text("a,b\n")
    (project / "secret.env").write_text("TOKEN=x\n")
    ignore = tmp_path / ".prefectignore"
    ignore.write_text("*.env\n")

    with counting(store.filesystem.s3) as requests:
        uploaded = store.put_directory(str(project), to_path="flows", ignore_file=str(ignore))
    assert uploaded == 14 and requests["PutObject"] == 14  # one request per file
    assert "code/flows/secret.env" not in object_keys(aws_env, bucket)

    out = tmp_path / "out"
    assert store.get_directory("flows", str(out)) == 14
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file() and p.suffix != ".env"
    )
    assert (out / "pkg1" / "module_5.py").read_text() == "VALUE = 5\n"


def test_get_directory_refuses_keys_that_escape(store, aws_env, bucket, tmp_path):
    boto3_client(aws_env.url, "s3").put_object(Bucket=bucket, Key="code/flows/../../evil.py", Body=b"x")
    with pytest.raises(BundleError, match="outside"):
        store.get_directory("flows", str(tmp_path / "out" / "inner"))
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "out").exists()


def test_get_directory_stays_inside_its_folder(store, aws_env, bucket, tmp_path):
    s3 = boto3_client(aws_env.url, "s3")
    s3.put_object(Bucket=bucket, Key="code/flows/a.py", Body=b"a")
    s3.put_object(Bucket=bucket, Key="code/flows2/b.py", Body=b"b")  # a sibling sharing the prefix string
    assert store.get_directory("flows", str(tmp_path / "out")) == 1
    assert [p.name for p in (tmp_path / "out").rglob("*")] == ["a.py"]


def test_half_a_key_pair_is_a_configuration_error_at_first_use(aws_env, bucket):
    store = S3(bucket_path=bucket, aws_access_key_id="AKIAHALF")
    with pytest.raises(ConfigurationError) as caught:
        store.put_bytes("k", b"1")
    assert caught.value.field == "aws_secret_access_key"
