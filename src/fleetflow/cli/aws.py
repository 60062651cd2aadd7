"""``fleetflow aws``: AWS helpers.

``register-blocks --from-terraform`` turns the outputs of ``terraform/examples/ecs-subflows``
into the blocks and work pool a deployment needs (see :mod:`fleetflow.aws.terraform`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.text import Text

from ._output import console, note, open_client, print_json, success, table

app = typer.Typer(
    name="aws", help="AWS helpers: register blocks from Terraform outputs.", no_args_is_help=True, add_completion=False
)

_STATUS_STYLES = {"created": "green", "updated": "yellow", "unchanged": "bright_black"}
_KIND_LABELS = {"aws-credentials": "AwsCredentials", "s3": "S3", "ecs-task": "ECSTask", "work-pool": "work pool"}


@app.callback()
def _group() -> None:
    """AWS helpers (a group, so `fleetflow aws register-blocks` keeps its name as commands are added)."""


@app.command("register-blocks")
def register_blocks(
    from_terraform: Path = typer.Option(
        ...,
        "--from-terraform",
        help="Directory you ran `terraform apply` in (runs `terraform output -json` there), "
        "or a file holding that command's output.",
    ),
    prefix: str = typer.Option("fleetflow", "--prefix", help="Blocks are named <prefix>-aws, <prefix>-code, <prefix>-ecs."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace saved blocks or a pool whose settings differ."),
    endpoint_url: Optional[str] = typer.Option(
        None, "--endpoint-url", help="Store this AWS endpoint in the credentials block (moto, LocalStack, a VPC endpoint)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Save the AwsCredentials, S3 and ECSTask blocks and the ECS work pool from Terraform outputs.

    Safe to re-run: what already matches is reported 'unchanged'; a saved block that differs
    is only replaced with --overwrite.
    """
    from ..aws.terraform import register_blocks_from_terraform

    result = register_blocks_from_terraform(
        from_terraform,
        prefix=prefix,
        overwrite=overwrite,
        client=open_client(),
        aws_client_parameters={"endpoint_url": endpoint_url} if endpoint_url else None,
    )
    if json_output:
        print_json([{**item.model_dump(), "ref": item.ref} for item in result.items])
        return
    _print_result(result)


def _print_result(result: Any) -> None:
    tbl = table("TYPE", "NAME", "STATUS", no_wrap=("TYPE", "STATUS"))
    for item in result.items:
        tbl.add_row(
            _KIND_LABELS.get(item.kind, item.kind),
            item.ref,
            Text(item.status, style=_STATUS_STYLES.get(item.status, "")),
        )
    console().print(tbl)
    if result.changed:
        success("Registered the blocks and work pool from the Terraform outputs.")
    else:
        note("Everything already matched the Terraform outputs; nothing was changed.")
    pool, storage = result.work_pool.name, result.storage.ref
    note(f"Next: fleetflow work-pool inspect {pool}")
    note(
        f"Deploy to it: fleetflow deployment build flows.py:my_flow -n prod --pool {pool} -sb {storage} "
        "--override cpu=2048 --override memory=4096 --apply"
    )
