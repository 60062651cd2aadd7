"""Offline checks of terraform/: formatting, conventions, validate, `terraform test` and checkov.
The real apply/destroy of examples/ecs-subflows against moto's server is in
test_example_server_path.py and test_example_direct_path.py.

Provider: hashicorp/aws 3.39.0 from the local mirror (see docs/terraform.md for why).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from terraform_helpers import EXAMPLE_OUTPUTS

if TYPE_CHECKING:
    from .conftest import Terraform

pytestmark = pytest.mark.terraform

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
TFTEST_DIR = Path(__file__).resolve().parent / "tftest"
MODULES = sorted(p.name for p in (TERRAFORM_DIR / "modules").iterdir() if p.is_dir())
EXAMPLES = sorted(p.name for p in (TERRAFORM_DIR / "examples").iterdir() if p.is_dir())

MODULE_FILES = {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"}
PROVIDER_CONSTRAINT = '">= 3.39, < 6.0"'

def _blocks(text: str, kind: str) -> dict[str, str]:
    """Top-level `kind "name" { ... }` blocks of an HCL file, by name (brace matching, enough for our files)."""
    blocks = {}
    for match in re.finditer(rf'^{kind} "([^"]+)"(?: "([^"]+)")? {{', text, flags=re.M):
        depth, i = 0, match.end() - 1
        while True:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        name = ".".join(g for g in match.groups() if g)
        blocks[name] = text[match.end() : i]
    return blocks


# --------------------------------------------------------------------------------------------
# Static checks (no provider needed)
# --------------------------------------------------------------------------------------------


def test_fmt(terraform: Terraform) -> None:
    for path in (TERRAFORM_DIR, TFTEST_DIR):
        proc = terraform.run("fmt", "-check", "-recursive", "-diff", "-no-color", str(path), cwd=REPO_ROOT, check=False)
        assert proc.returncode == 0, f"run `terraform fmt -recursive {path}`:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("module", MODULES)
def test_module_follows_conventions(module: str) -> None:
    path = TERRAFORM_DIR / "modules" / module
    files = {p.name for p in path.iterdir() if not p.name.startswith(".")}
    assert files == MODULE_FILES, f"modules/{module} must hold exactly {sorted(MODULE_FILES)}"

    variables = _blocks((path / "variables.tf").read_text(), "variable")
    for name, body in variables.items():
        assert re.search(r"^\s*description\s*=", body, re.M), f"{module}: variable {name} has no description"
        assert re.search(r"^\s*type\s*=", body, re.M), f"{module}: variable {name} has no type"
    assert "tags" in variables and "map(string)" in variables["tags"], f"{module}: needs the shared `tags` map"

    for name, body in _blocks((path / "outputs.tf").read_text(), "output").items():
        assert re.search(r"^\s*description\s*=", body, re.M), f"{module}: output {name} has no description"

    resources = list(_blocks((path / "main.tf").read_text(), "resource"))
    by_type: dict[str, list[str]] = {}
    for address in resources:
        rtype, _, rname = address.partition(".")
        by_type.setdefault(rtype, []).append(rname)
    singles = {t: names[0] for t, names in by_type.items() if len(names) == 1}
    assert all(n == "this" for n in singles.values()), f"{module}: single resources must be named `this`: {singles}"

    assert PROVIDER_CONSTRAINT in (path / "versions.tf").read_text()
    assert (TFTEST_DIR / module).is_dir(), f"modules/{module} has no terraform test in {TFTEST_DIR}/{module}"


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_outputs_are_documented(example: str) -> None:
    path = TERRAFORM_DIR / "examples" / example
    outputs = _blocks((path / "outputs.tf").read_text(), "output")
    readme = (path / "README.md").read_text()
    if example == "ecs-subflows":
        assert EXAMPLE_OUTPUTS <= outputs.keys(), f"missing outputs: {EXAMPLE_OUTPUTS - outputs.keys()}"
    for name in outputs:
        assert f"`{name}`" in readme, f"output {name} is not documented in examples/{example}/README.md"
    for name, body in _blocks((path / "variables.tf").read_text(), "variable").items():
        assert re.search(r"^\s*description\s*=", body, re.M) and re.search(r"^\s*type\s*=", body, re.M), name
    assert PROVIDER_CONSTRAINT in (path / "versions.tf").read_text()


def test_checkov_has_no_failed_checks(terraform: Terraform) -> None:
    proc = subprocess.run(
        # --skip-download + BC_SKIP_MAPPING: never call the Prisma Cloud API (no internet in CI).
        [terraform.checkov, "-d", str(TERRAFORM_DIR), "--framework", "terraform", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        env={**terraform.env, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"},
        timeout=300,
    )
    report = json.loads(proc.stdout)
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]]
    assert failed == [], f"checkov failed checks (fix them, or skip inline with a reason):\n{failed}"
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 50, "checkov scanned suspiciously little"
    for check in report["results"]["skipped_checks"]:
        reason = (check["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) > 20, f"skip of {check['check_id']} on {check['resource']} needs a real reason"


# --------------------------------------------------------------------------------------------
# With the provider: validate and `terraform test`
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [f"modules/{m}" for m in MODULES] + [f"examples/{e}" for e in EXAMPLES])
def test_validate(terraform: Terraform, tf_copy: Path, config: str) -> None:
    cwd = tf_copy / config
    terraform.init(cwd)
    proc = terraform.run("validate", "-json", "-no-color", cwd=cwd)
    result = json.loads(proc.stdout)
    assert result["valid"], result
    assert result["error_count"] == 0


@pytest.mark.parametrize("module", MODULES)
def test_module_terraform_test(terraform: Terraform, tf_copy: Path, module: str) -> None:
    cwd = tf_copy / "modules" / module
    terraform.init(cwd)
    proc = terraform.run("test", "-no-color", cwd=cwd, check=False)
    summary = re.search(r"(Success|Failure)! (\d+) passed, (\d+) failed", proc.stdout)
    assert proc.returncode == 0 and summary and summary.group(1) == "Success", proc.stdout + proc.stderr
    assert int(summary.group(2)) > 0 and "skip" not in proc.stdout.split("Success!")[0], proc.stdout

