"""``fleetflow block``: list, inspect and delete saved blocks; describe the block types.

Secrets never reach the terminal: ``inspect`` masks the stored (encrypted) secret markers
without decrypting them, so it works -- and stays safe -- even in a shell that lacks the
encryption key.
"""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.console import Group
from rich.text import Text

from ..blocks import MASK
from ..exceptions import BlockNotFound, InvalidNameError
from ._output import console, dumps, fmt_time, kv_grid, note, open_client, panel, print_json, success, table

app = typer.Typer(name="block", help="List, inspect and delete saved blocks; describe block types.", no_args_is_help=True)


def parse_block_ref(ref: str) -> tuple[str, str]:
    """``'slug/name'`` -> ``(slug, name)``; a clear error for anything else."""
    slug, sep, name = ref.partition("/")
    if not sep or not slug or not name:
        raise InvalidNameError(
            f"expected a block as 'type/name' (e.g. 'ecs-task/prod'), got {ref!r}; list blocks with `fleetflow block ls`",
            field="name",
        )
    return slug, name


def block_class_or_none(slug: str) -> Any:
    """The registered class for ``slug``, or None when it is not importable here (a user's own type)."""
    from ..blocks import get_block_class

    try:
        return get_block_class(slug)
    except BlockNotFound:
        return None


# ---- ls ----------------------------------------------------------------------------------------
@app.command("ls")
def ls(
    block_type: Optional[str] = typer.Option(None, "--type", help="Only blocks of this type slug (e.g. ecs-task)."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List saved blocks (names and types only; use inspect to see values)."""
    docs = open_client().read_block_documents(block_type)
    if json_output:
        print_json([_doc_summary(d) for d in docs])
        return
    if not docs:
        _print_none_found(block_type)
        return
    tbl = table("TYPE", "NAME", "ID", "UPDATED")
    for doc in docs:
        tbl.add_row(doc.block_type, doc.name, doc.id[:8], fmt_time(doc.updated or doc.created))
    console().print(tbl)


def _doc_summary(doc: Any) -> dict[str, Any]:
    return {"id": doc.id, "block_type": doc.block_type, "name": doc.name, "created": doc.created, "updated": doc.updated}


def _print_none_found(block_type: str | None) -> None:
    """An empty list is often a typo in --type: name the known types in that case."""
    hint = ""
    if block_type and block_class_or_none(block_type) is None:
        from ..blocks import block_types

        hint = f" ({block_type!r} is not a known block type; known: {', '.join(block_types())})"
    note(f"No blocks found{hint}.")


# ---- inspect -----------------------------------------------------------------------------------
@app.command("inspect")
def inspect(
    ref: str = typer.Argument(..., metavar="TYPE/NAME", help="The block, e.g. ecs-task/prod."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a panel."),
) -> None:
    """Show a saved block's values; secret fields are shown as ********."""
    slug, name = parse_block_ref(ref)
    doc = open_client().read_block_document(slug, name)
    cls = block_class_or_none(slug)
    data = mask_document(doc.data, cls)
    if json_output:
        print_json({**_doc_summary(doc), "schema_version": doc.schema_version, "data": data})
        return
    console().print(_inspect_renderable(doc, cls, data))


def mask_document(data: dict[str, Any], cls: Any = None) -> dict[str, Any]:
    """Stored data with every secret replaced by ``********`` -- without decrypting anything.

    Secrets are stored as ``{"$fleetflow-secret": ciphertext}`` markers (masked wherever they
    nest); fields the class declares as secret are masked too, whatever their stored form.
    """
    masked = _mask_markers(data)
    for field in _secret_fields(cls):
        if masked.get(field) is not None:
            masked[field] = MASK
    return masked


def _mask_markers(value: Any) -> Any:
    from ..blocks.secrets import OPEN_MARKER, SECRET_MARKER

    if isinstance(value, dict):
        if SECRET_MARKER in value or OPEN_MARKER in value:
            return MASK
        return {k: _mask_markers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_markers(v) for v in value]
    return value


def _secret_fields(cls: Any) -> list[str]:
    """Top-level fields annotated with a pydantic SecretStr (also inside Optional[...])."""
    import pydantic

    if cls is None:
        return []
    return [name for name, info in cls.model_fields.items() if _mentions(info.annotation, pydantic.SecretStr)]


def _mentions(annotation: Any, kind: type) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, kind):
        return True
    return any(_mentions(arg, kind) for arg in getattr(annotation, "__args__", ()) or ())


def _inspect_renderable(doc: Any, cls: Any, data: dict[str, Any]) -> Group:
    header = kv_grid(
        [
            ("type", doc.block_type),
            ("name", doc.name),
            ("id", doc.id),
            ("class", _class_path(cls) if cls else "(not importable here)"),
            ("created", fmt_time(doc.created)),
            ("updated", fmt_time(doc.updated)),
        ]
    )
    values = table("FIELD", "VALUE")
    for field, value in data.items():
        values.add_row(field, value if isinstance(value, str) else dumps(value))
    return Group(panel(header, f"block {doc.block_type}/{doc.name}"), values)


# ---- delete ------------------------------------------------------------------------------------
@app.command("preview")
def preview(
    ref: str = typer.Argument(..., help="An infrastructure block: ecs-task/NAME."),
    override: list[str] = typer.Option([], "--override", help="Dot-path override key=value (repeatable), e.g. cpu=512."),
    flow_run_id: Optional[str] = typer.Option(None, "--flow-run-id", help="Run id to show in the command."),
) -> None:
    """Print exactly what a launch would send (task definition and RunTask request; secrets masked)."""
    from ..blocks import Block
    from .deployments import parse_assignments

    block = Block.load(ref, client=open_client())
    if not hasattr(block, "preview"):
        from ..exceptions import ConfigurationError

        raise ConfigurationError(f"{ref} is a {type(block).__name__} block; preview is for ecs-task blocks")
    print_json(block.preview(flow_run_id=flow_run_id, overrides=parse_assignments(override, "--override") or None))


@app.command("delete")
def delete(
    ref: str = typer.Argument(..., metavar="TYPE/NAME", help="The block, e.g. ecs-task/prod."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a saved block (deployments and pools naming it will fail to launch)."""
    slug, name = parse_block_ref(ref)
    client = open_client()
    client.read_block_document(slug, name)  # fail with the "did you mean" error before asking
    if not yes:
        typer.confirm(f"Delete block {slug}/{name}?", abort=True)
    client.delete_block_document(slug, name)
    success(f"Deleted block {slug}/{name}.")


# ---- types -------------------------------------------------------------------------------------
@app.command("types")
def types(
    slug: Optional[str] = typer.Argument(None, help="Describe this type's fields (e.g. ecs-task)."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List block types, or describe one type's fields."""
    from ..blocks import block_types, get_block_class

    if slug:
        cls = get_block_class(slug)
        info = {**_type_summary(slug, cls), "fields": describe_fields(cls)}
        if json_output:
            print_json(info)
        else:
            console().print(_type_renderable(info))
        return
    summaries = [_type_summary(s, c) for s, c in block_types().items()]
    if json_output:
        print_json(summaries)
        return
    tbl = table("SLUG", "CLASS", "DESCRIPTION")
    for item in summaries:
        tbl.add_row(item["slug"], item["class"], item["description"])
    console().print(tbl)


def _type_summary(slug: str, cls: Any) -> dict[str, Any]:
    return {"slug": slug, "class": _class_path(cls), "description": _description(cls)}


def _class_path(cls: Any) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _description(cls: Any) -> str:
    """The class's ``_description``, else the first line of its docstring."""
    text = getattr(cls, "_description", "") or (cls.__doc__ or "").strip().split("\n")[0]
    return str(text)


def describe_fields(cls: Any) -> list[dict[str, Any]]:
    """Name, type, default, required, secret and description of each field of a block class."""
    import pydantic

    fields = []
    for name, info in cls.model_fields.items():
        required = info.is_required()
        default = None if required else info.get_default(call_default_factory=True)
        fields.append(
            {
                "name": name,
                "type": type_name(info.annotation),
                "required": required,
                "default": MASK if isinstance(default, pydantic.SecretStr) else default,
                "secret": _mentions(info.annotation, pydantic.SecretStr),
                "description": info.description or "",
            }
        )
    return fields


def type_name(annotation: Any) -> str:
    """'str', 'int | None', 'dict[str, Any]' rather than "<class 'str'>"."""
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("NoneType", "None")


def _type_renderable(info: dict[str, Any]) -> Group:
    header = kv_grid([("slug", info["slug"]), ("class", info["class"]), ("description", info["description"])])
    fields = table("FIELD", "TYPE", "DEFAULT", "DESCRIPTION", title="fields")
    for f in info["fields"]:
        default = Text("required", style="bold") if f["required"] else dumps(f["default"])
        name = Text(f["name"]) + (Text(" (secret)", style="yellow") if f["secret"] else Text(""))
        fields.add_row(name, f["type"], default, f["description"])
    return Group(panel(header, f"block type {info['slug']}"), fields)
