"""``livcr purposes``: the purpose catalogue, each body's JSON Schema and a valid example.

For services written in any language: what they may send, and the exact body each purpose
takes (spec §7.1, §7.2).
"""

from __future__ import annotations

import json

import click
import msgspec

from ..purpose_examples import example_body
from ..purposes import CATALOGUE, Purpose, encode_body

PURPOSE_CHOICE = click.Choice(sorted(CATALOGUE))


def body_schema(purpose: Purpose) -> dict[str, object]:
    """The JSON Schema of a purpose's body, as msgspec derives it from the body's struct."""
    return msgspec.json.schema(purpose.body_type)


@click.group("purposes")
def purposes_group() -> None:
    """The purposes a message may carry, their bodies' schemas and examples."""


@purposes_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def purposes_list(as_json: bool) -> None:  # noqa: FBT001  (click flag)
    """Every purpose: who may send it to whom, and what it is for."""
    rows = [
        {
            "purpose": p.tag,
            "senders": sorted(r.value for r in p.sender_roles),
            "recipients": sorted(r.value for r in p.recipient_roles),
            "case_states": sorted(s.value if s is not None else "new" for s in p.case_states),
            "needs_cosignatures": p.needs_cosignatures,
            "description": p.description,
        }
        for p in CATALOGUE.values()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for p in CATALOGUE.values():
        cosigned = ", co-signed" if p.needs_cosignatures else ""
        senders = ", ".join(sorted(r.value for r in p.sender_roles))
        recipients = ", ".join(sorted(r.value for r in p.recipient_roles))
        click.echo(f"{p.tag}: {p.description}")
        click.echo(f"    {senders} -> {recipients}{cosigned}")


@purposes_group.command("schema")
@click.argument("purpose", type=PURPOSE_CHOICE, metavar="PURPOSE")
def purposes_schema(purpose: str) -> None:
    """Print the JSON Schema of PURPOSE's body.

    The ``purpose`` field is the body's tag; a gateway fills it in when a service leaves it out.
    """
    click.echo(json.dumps(body_schema(CATALOGUE[purpose]), indent=2, ensure_ascii=False))


@purposes_group.command("example")
@click.argument("purpose", type=PURPOSE_CHOICE, metavar="PURPOSE")
def purposes_example(purpose: str) -> None:
    """Print a valid, fictitious body for PURPOSE (JSON, ready for `livcr gateway send --body`)."""
    body = msgspec.json.decode(encode_body(example_body(purpose)))
    click.echo(json.dumps(body, indent=2, ensure_ascii=False))


COMMANDS = (purposes_group,)
