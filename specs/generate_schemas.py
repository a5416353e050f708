"""Generate one JSON Schema (2020-12) per purpose body into specs/schemas/ (spec §7.2).

Each schema is ``msgspec.json.schema`` of the purpose's Struct in ``livcr_exchange/bodies.py``,
with three changes so that it reads the same outside Python:

- patterns: Python's ``\\A`` and ``\\Z`` (msgspec matches with ``re.search``) become ECMA-262's
  ``^`` and ``$``, which without the ``m`` flag anchor at the very start and end, as ``\\A`` and
  ``\\Z`` do. Patterns are ECMA-262 with the ``u`` flag (code points); characters beyond the BMP
  stand as themselves;
- ``$schema``, ``$id``, ``title`` and a ``description`` that states the rules no JSON Schema can
  express (NFC, duplicate keys, nesting depth, cross-field rules), with the spec sections;
- written as sorted, indented, ASCII-only JSON with a final newline, so regenerating changes no
  byte.

Usage: python specs/generate_schemas.py [OUT_DIR]   (default: specs/schemas)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from livcr_exchange.body_json import MAX_BODY_DEPTH
from livcr_exchange.purposes import CATALOGUE

PUBLISHED_DIR = Path(__file__).parent / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "urn:livcr-exchange:v2:body:"

COMMON_RULES = (
    "Rules beyond this schema (spec §4.4, §7.2): the JSON text is UTF-8 and repeats no key "
    f"within an object; it nests at most MAX_BODY_DEPTH = {MAX_BODY_DEPTH} objects and arrays; "
    "every string is in Unicode NFC; every date is a calendar date; a case_ref or meeting_ref "
    "equals the envelope header's. A receiver refuses a body that breaks any of them, or this "
    "schema, with body_schema_violation."
)
CROSS_FIELD_RULES = {
    "special_category": "special_category_reason is present exactly when special_category is true.",
    "deletion_requested": "deletion_deadline is present exactly when deletion_requested is true.",
    "received_on": "deadline is not before received_on.",
}


def ecma_pattern(pattern: str) -> str:
    """``\\A...\\Z`` in Python's dialect as ``^...$`` in ECMA-262's."""
    if not (pattern.startswith("\\A") and pattern.endswith("\\Z")):
        raise ValueError(f"pattern is not anchored with \\A and \\Z: {pattern!r}")
    inner = pattern[2:-2]
    if "\\A" in inner or "\\Z" in inner or inner.endswith("\\"):
        raise ValueError(f"pattern has an inner anchor: {pattern!r}")
    return "^" + inner + "$"


def _translate(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: ecma_pattern(value) if key == "pattern" else _translate(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_translate(item) for item in node]
    return node


def schema_for(tag: str) -> dict[str, Any]:
    purpose = CATALOGUE[tag]
    generated: dict[str, Any] = _translate(msgspec.json.schema(purpose.body_type))
    fields = purpose.body_type.__struct_fields__
    rules = [COMMON_RULES, *(rule for field, rule in CROSS_FIELD_RULES.items() if field in fields)]
    return {
        "$schema": DIALECT,
        "$id": ID_BASE + tag,
        "title": f"{tag} body",
        "description": f"The body of a {tag} message: {purpose.description}. " + " ".join(rules),
        **generated,
    }


def generate() -> dict[str, bytes]:
    """{file name: bytes} for every purpose, without writing."""
    return {
        f"{tag}.json": (json.dumps(schema_for(tag), indent=2, sort_keys=True) + "\n").encode()
        for tag in CATALOGUE
    }


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else PUBLISHED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in generate().items():
        (out_dir / name).write_bytes(data)
        print(f"wrote {out_dir / name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
