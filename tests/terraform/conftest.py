"""Fixtures for the offline Terraform checks.

Everything runs against a throw-away copy of ``terraform/`` so ``.terraform/``, lock files and
state never land in the repository. The AWS provider comes from the filesystem mirror that
``make test-deps`` builds once, before pytest starts, with ``scripts/terraform_mirror.sh``
under ``.cache/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from terraform_helpers import AppliedExample, applied_example

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
TFTEST_DIR = Path(__file__).resolve().parent / "tftest"
MIRROR_SCRIPT = REPO_ROOT / "scripts" / "terraform_mirror.sh"


@dataclass
class Terraform:
    """Runs terraform with the mirror-only CLI config and records how long each call took."""

    binary: str
    env: dict[str, str]
    checkov: str
    timings: list[tuple[str, float]] = field(default_factory=list)

    def run(self, *args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = subprocess.run(
            [self.binary, *args],
            cwd=cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.timings.append((f"terraform {' '.join(args[:2])} ({cwd.name})", time.monotonic() - started))
        if check and proc.returncode != 0:
            raise AssertionError(
                f"terraform {' '.join(args)} failed in {cwd} (exit {proc.returncode})\n"
                f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
            )
        return proc

    def init(self, cwd: Path) -> None:
        # -backend=false: the examples ship no backend, and state must stay in the temp copy.
        self.run("init", "-input=false", "-backend=false", "-no-color", cwd=cwd)


def _find_terraform() -> str:
    binary = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if not binary:
        pytest.fail(
            "terraform is not installed (looked at $TERRAFORM and PATH). The terraform tests do not "
            "skip: install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install) "
            "or deselect them with `-m 'not terraform'`.",
            pytrace=False,
        )
    return binary


def _mirror_paths() -> dict[str, str]:
    """Where ``make test-deps`` put the provider mirror and checkov (built before pytest starts,
    never inside a test's timeout); a missing piece fails with the one line naming that command."""
    proc = subprocess.run(["bash", str(MIRROR_SCRIPT), "--check"], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"{MIRROR_SCRIPT} --check failed",
                    pytrace=False)  # fmt: skip
    found: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        found[key] = value
    return found


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terraform]:
    binary = _find_terraform()
    paths = _mirror_paths()
    home = tmp_path_factory.mktemp("tf-home")
    env = {
        # A minimal environment: no real AWS profile or credentials can leak into a test.
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "TF_CLI_CONFIG_FILE": paths["TF_CLI_CONFIG_FILE"],
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "AWS_ACCESS_KEY_ID": f"fleetflow-tf-{uuid.uuid4().hex[:12]}",
        "AWS_SECRET_ACCESS_KEY": uuid.uuid4().hex,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    tf = Terraform(binary=binary, env=env, checkov=paths["CHECKOV"])
    yield tf
    report = "\n".join(f"  {seconds:6.1f}s  {what}" for what, seconds in tf.timings)
    print(f"\nterraform step timings:\n{report}")


@pytest.fixture(scope="session")
def tf_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of terraform/ with each module's tftest files placed in its tests/ directory."""
    dest = tmp_path_factory.mktemp("terraform") / "terraform"
    shutil.copytree(
        TERRAFORM_DIR,
        dest,
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*"),
    )
    for module_tests in TFTEST_DIR.iterdir():
        target = dest / "modules" / module_tests.name / "tests"
        shutil.copytree(module_tests, target)
    return dest


@pytest.fixture()
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1, on a free port, stopped after the test."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()



@pytest.fixture(scope="module")
def server_example(terraform: Terraform, tf_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppliedExample]:
    """examples/ecs-subflows applied on its default path (the fleetflow server behind an HTTPS
    ALB), once for the module using it; destroyed and checked after the module's last test."""
    with applied_example(terraform, tf_copy, tmp_path_factory.mktemp("server-path"), name="ffserver",
                         pool="ecs-server", over_server=True) as example:
        yield example


@pytest.fixture(scope="module")
def direct_example(terraform: Terraform, tf_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppliedExample]:
    """examples/ecs-subflows applied on its direct-PostgreSQL path (``create_server = false``)."""
    with applied_example(terraform, tf_copy, tmp_path_factory.mktemp("direct-path"), name="ffdirect",
                         pool="ecs-direct", over_server=False) as example:
        yield example

@pytest.fixture
def shell_env(terraform: Terraform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """What the user's shell has for the proof: terraform (register-blocks runs `terraform output
    -json`) and AWS keys for the default chain (moto accepts any), nothing pointing elsewhere."""
    import logging

    from aws_server import use_dummy_aws_env

    from fleetflow.aws.credentials import clear_client_cache

    use_dummy_aws_env(monkeypatch, tmp_path)
    # werkzeug logs one line per moto request: thousands of them would bury a failure's output.
    monkeypatch.setattr(logging.getLogger("werkzeug"), "level", logging.ERROR)
    monkeypatch.setenv("TERRAFORM", terraform.binary)
    for name in ("TF_CLI_CONFIG_FILE", "TF_IN_AUTOMATION", "CHECKPOINT_DISABLE"):
        monkeypatch.setenv(name, terraform.env[name])
    clear_client_cache()
    yield
    clear_client_cache()
