"""Write docs/configuration.md from the hub's and the gateway's config structs.

Every key, its type, default and meaning, read from the structs themselves (and their MEANINGS
tables), so the reference cannot drift from what the services accept. Run
`python docs/generate_configuration.py` after changing a config struct; a test checks that
doing so changes nothing.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path

import msgspec

from gateway import config as gateway_config
from hub import config as hub_config

OUT = Path(__file__).resolve().parent / "configuration.md"
HEADER = """# Configuration reference

Generated from the config structs by `docs/generate_configuration.py`; do not edit by hand.
Both files are TOML. Relative paths are relative to the file's folder. An unknown key, a value
of the wrong type or out of range stops the service at start-up with an error that names the
key; `livcr hub config check` and `livcr gateway config check` run the same validation.
`LIVCR_CONFIG` may name the file instead of `--config`.
"""


def type_name(kind: object) -> str:
    """A TOML reader's name for a field's type, with its bounds."""
    if typing.get_origin(kind) is typing.Annotated:
        base, *metas = typing.get_args(kind)
        bounds = [
            f"{label} {getattr(m, attr)}"
            for m in metas
            for attr, label in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
            if getattr(m, attr, None) is not None
        ]
        return type_name(base) + (f" ({', '.join(bounds)})" if bounds else "")
    if typing.get_origin(kind) is typing.Literal:
        return " \\| ".join(f'`"{v}"`' for v in typing.get_args(kind))
    if isinstance(kind, types.UnionType):
        return " or ".join(type_name(k) for k in typing.get_args(kind) if k is not type(None))
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        kind,  # type: ignore[call-overload]
        getattr(kind, "__name__", str(kind)),
    )


def default_text(field: msgspec.structs.FieldInfo) -> str:
    if field.required:
        return "required"
    value = field.default if field.default is not msgspec.NODEFAULT else field.default_factory()
    return f"`{msgspec.json.encode(value).decode()}`"


def section_rows(
    config_type: type[msgspec.Struct], meanings: dict[str, str]
) -> list[tuple[str, list[str]]]:
    """(section heading, table rows) for each table of a config file."""
    sections = []
    for section in msgspec.structs.fields(config_type):
        if section.name == "base_dir":  # set by the loader, not read from the file
            continue
        kind = section.type
        optional = isinstance(kind, types.UnionType)
        if optional:
            kind = next(k for k in typing.get_args(kind) if k is not type(None))
        note = " (optional: leave the table out to go without)" if optional else ""
        rows = []
        for field in msgspec.structs.fields(kind):
            key = f"{section.name}.{field.name}"
            rows.append(
                f"| `{field.name}` | {type_name(field.type)} | {default_text(field)}"
                f" | {meanings[key]} |"
            )
        sections.append((f"### `[{section.name}]`{note}", rows))
    return sections


def render() -> str:
    parts = [HEADER]
    for title, config_type, meanings in (
        ("hub.toml (`livcr hub ...`)", hub_config.HubConfig, hub_config.MEANINGS),
        (
            "gateway.toml (`livcr gateway ...`)",
            gateway_config.GatewayConfig,
            gateway_config.MEANINGS,
        ),
    ):
        parts.append(f"\n## {title}\n")
        for heading, rows in section_rows(config_type, meanings):
            parts.append(f"\n{heading}\n\n| key | type | default | meaning |\n|---|---|---|---|\n")
            parts.append("\n".join(rows) + "\n")
    return "".join(parts)


if __name__ == "__main__":
    OUT.write_text(render())
    sys.stdout.write(f"wrote {OUT}\n")
