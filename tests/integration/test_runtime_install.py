"""The runtime image without Docker: infra/install-runtime.sh (every install step of
infra/Dockerfile) into a fresh virtualenv, then the two commands ECS runs from it; plus static
checks of the Dockerfile and infra/compose.yaml.

No Docker engine is available in CI, so this is what keeps a broken install step from shipping.
The dependencies' wheels are built before pytest starts (``make test-deps`` runs
``scripts/runtime_wheelhouse.py``, keyed by pyproject.toml), so the install step here runs
offline (``PIP_NO_INDEX``). Building fleetflow from the copied sources, the virtualenv,
``pip check`` and the imports are never cached. How long the install takes is a benchmark
figure (``benchmarks/runtime_install.py``), not something this test asserts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
SCRIPT = INFRA / "install-runtime.sh"
DOCKERFILE = INFRA / "Dockerfile"
WHEELHOUSE_SCRIPT = REPO / "scripts" / "runtime_wheelhouse.py"


def _clean_env(home: Path) -> dict[str, str]:
    """The caller's environment minus anything that would leak this test run's virtualenv or store."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "FLEETFLOW_FLOW_RUN_ID", "FLEETFLOW_DATABASE_URL", "FLEETFLOW_API_URL")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST_")}
    env["FLEETFLOW_HOME"] = str(home)
    return env


def _docker_context_copy(dest: Path) -> Path:
    """What the Dockerfile COPYs, and only that (so a missing COPY fails here too)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "src", dest / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    (dest / "infra").mkdir()
    shutil.copy2(SCRIPT, dest / "infra" / SCRIPT.name)
    return dest


def _wheelhouse() -> Path:
    """The wheelhouse ``make test-deps`` built for this pyproject.toml (fails naming that command)."""
    proc = subprocess.run([sys.executable, str(WHEELHOUSE_SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.fail(proc.stderr.strip(), pytrace=False)
    return Path(proc.stdout.strip())


@pytest.mark.timeout(900)
def test_install_script_builds_a_working_runtime(tmp_path: Path) -> None:
    wheels = _wheelhouse()
    source = _docker_context_copy(tmp_path / "src-copy")
    venv = tmp_path / "runtime"
    # Offline from the wheelhouse: pip resolves, builds fleetflow (setuptools from the
    # wheelhouse too) and installs exactly as in the image, minus the downloads.
    env = {**_clean_env(tmp_path / "home"), "PIP_FIND_LINKS": str(wheels), "PIP_NO_INDEX": "1"}

    proc = subprocess.run(
        ["bash", str(source / "infra" / SCRIPT.name), sys.executable, str(source), str(venv)],
        env=env, capture_output=True, text=True, timeout=500,
    )  # fmt: skip
    assert proc.returncode == 0, f"install-runtime.sh failed:\n{proc.stdout}\n{proc.stderr}"
    assert "imports OK" in proc.stdout

    shutil.rmtree(source)  # the Dockerfile deletes the sources too: the install must not need them
    python, fleetflow = venv / "bin" / "python", venv / "bin" / "fleetflow"

    # The ECS flow-run command, without a run id: usage and exit 2 (not a traceback).
    runner = subprocess.run([str(python), "-m", "fleetflow.runner"], env=env, capture_output=True, text=True, timeout=60)
    assert runner.returncode == 2, runner.stdout + runner.stderr
    assert "usage: python -m fleetflow.runner <flow-run-id>" in runner.stderr

    # The `fleetflow` entry point the worker service runs.
    version = subprocess.run([str(fleetflow), "version", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0, version.stdout + version.stderr
    info = json.loads(version.stdout)
    assert info["fleetflow"] == "0.1.0"
    assert Path(info["python_executable"]).parent == venv / "bin"
    worker_help = subprocess.run([str(fleetflow), "worker", "start", "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert worker_help.returncode == 0 and "--pool" in worker_help.stdout, worker_help.stdout + worker_help.stderr

    # A regular install into the venv's site-packages (not an editable link to a source tree).
    where = subprocess.run(
        [str(python), "-c", "import fleetflow, s3fs, aiobotocore, boto3, psycopg; print(fleetflow.__file__)"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv)


def test_install_script_rejects_a_wrong_project_dir(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(SCRIPT), sys.executable, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "has no pyproject.toml" in proc.stderr
    usage = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "Usage: infra/install-runtime.sh PYTHON PROJECT_DIR" in usage.stderr


# --- static checks ---------------------------------------------------------------------------------
def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        current += " " + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(item.split(None, 1)[0].upper(), item.split(None, 1)[1] if " " in item else "") for item in logical]


def _expected_tag() -> str:
    from importlib import metadata

    python = re.search(r"^ARG PYTHON_VERSION=(\S+)$", DOCKERFILE.read_text(), re.M).group(1)
    return f"fleetflow/fleetflow:{metadata.version('fleetflow')}-python{python}"


def test_dockerfile_runs_the_install_script_as_root_and_the_runtime_as_a_user() -> None:
    steps = _instructions(DOCKERFILE.read_text())
    kinds = [kind for kind, _ in steps]

    runs = [args for kind, args in steps if kind == "RUN"]
    install = [args for args in runs if "install-runtime.sh" in args]
    assert len(install) == 1, "exactly one RUN step must run infra/install-runtime.sh"
    assert any(kind == "COPY" and "infra/install-runtime.sh" in args for kind, args in steps)
    assert not any("pip install" in args for args in runs), "install with infra/install-runtime.sh only"

    users = [args for kind, args in steps if kind == "USER"]
    assert users, "the image must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"the final USER is {users[-1]!r}"
    assert kinds.index("USER") > kinds.index("RUN"), "USER comes after the install steps"

    assert "ENTRYPOINT" not in kinds, "no ENTRYPOINT: an ECS container `command` must be the whole argv"
    cmd = [args for kind, args in steps if kind == "CMD"]
    assert len(cmd) == 1
    assert json.loads(cmd[0]) == ["python", "-m", "fleetflow.runner"], "exec-form CMD running the runner"
    for kind, args in steps:
        if kind in ("CMD", "ENTRYPOINT"):
            assert "pip" not in args, f"{kind} must not install anything at container start"


def test_image_tag_matches_the_ecs_default_image() -> None:
    from fleetflow.aws.ecs_requests import default_image

    tag = _expected_tag()
    assert default_image().rsplit("-python", 1)[0] == tag.rsplit("-python", 1)[0]
    assert f"docker build -f infra/Dockerfile -t {tag} ." in DOCKERFILE.read_text()
    assert tag in (INFRA / "README.md").read_text()
    assert yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]["worker"]["image"] == tag


def test_compose_runs_postgres_and_a_worker_from_the_image() -> None:
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    postgres, worker = compose["services"]["postgres"], compose["services"]["worker"]
    assert "healthcheck" in postgres
    assert all(port.startswith("127.0.0.1:") for port in postgres["ports"]), "never publish the store on all interfaces"

    assert worker["build"] == {"context": "..", "dockerfile": "infra/Dockerfile"}
    assert (INFRA / worker["build"]["context"] / worker["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert worker["command"][:4] == ["fleetflow", "worker", "start", "--pool"]
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = worker["environment"]["FLEETFLOW_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
    # Host AWS settings pass through only when set: an empty AWS_PROFILE breaks botocore.
    assert all(worker["environment"][name] is None for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ACCESS_KEY_ID"))

    # The same worker command as the Terraform worker service.
    tf = (REPO / "terraform" / "modules" / "worker" / "main.tf").read_text()
    assert 'concat(["fleetflow", "worker", "start", "--pool", var.work_pool_name]' in tf
    assert shlex.join(worker["command"][:4]) in (INFRA / "README.md").read_text()
