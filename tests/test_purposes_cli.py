"""`livcr purposes`: the catalogue, each body's JSON Schema and a valid example, outside Python."""

from __future__ import annotations

import json

import msgspec
import pytest
from click.testing import CliRunner

from livcr_cli import main
from livcr_exchange.purposes import CATALOGUE, decode_body


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_list_names_every_purpose_with_its_roles() -> None:
    code, output = run("purposes", "list")
    assert code == 0
    assert output.startswith(
        "aanmelding: referral of a person to the cell\n"
        "    aanmelder_extern, deelnemer -> coordinator\n"
    )
    assert "terugkoppelingsfiche: " in output
    assert ", co-signed\n" in output
    code, output = run("purposes", "list", "--json")
    assert [row["purpose"] for row in json.loads(output)] == list(CATALOGUE)


@pytest.mark.parametrize("purpose", sorted(CATALOGUE))
def test_schema_and_example_of_each_purpose(purpose: str) -> None:
    code, output = run("purposes", "schema", purpose)
    assert code == 0
    schema = msgspec.json.schema(CATALOGUE[purpose].body_type)
    assert json.loads(output) == json.loads(json.dumps(schema))  # tuples become lists
    code, output = run("purposes", "example", purpose)
    assert code == 0
    decode_body(purpose, output.encode())  # a valid body, as the gateway will check it


def test_an_unknown_purpose_lists_the_choices() -> None:
    code, output = run("purposes", "schema", "roddel")
    assert code == 2
    assert "Invalid value for 'PURPOSE': 'roddel' is not one of 'aanmelding', " in output
    code, output = run(
        "gateway",
        "send",
        "--config",
        "gateway.toml",
        "--case",
        "case-x",
        "--purpose",
        "roddel",
        "--to",
        "coord",
        "--body",
        "-",
    )
    assert code == 2
    assert "Invalid value for '--purpose': 'roddel' is not one of 'aanmelding', " in output
