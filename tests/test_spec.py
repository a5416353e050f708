"""The spec states every label and limit verbatim, as constants.py has them."""

from __future__ import annotations

from pathlib import Path

from livcr_exchange import constants
from livcr_exchange.body_json import MAX_BODY_DEPTH

SPEC = (Path(__file__).resolve().parent.parent / "specs" / "livcr-exchange.md").read_text()


def test_every_label_appears_verbatim() -> None:
    labels = {k: v for k, v in vars(constants).items() if k.startswith("LABEL_")}
    assert len(labels) >= 13
    for name, value in labels.items():
        text = value.decode("ascii").replace("\x00", "\\x00")
        assert f"| `{name}` | `{text}` |" in SPEC, name


def test_every_limit_is_named_in_the_spec() -> None:
    for name in (
        "MAX_RECIPIENTS",
        "MAX_HEADER_BYTES",
        "CHUNK_BYTES",
        "MAX_BODY_BYTES",
        "MAX_CLOCK_SKEW",
        "MAX_MESSAGE_LIFETIME",
        "MAX_DELIVERY_DELAY",
        "MAX_PREKEY_LIFETIME",
        "DEFAULT_PREKEY_LIFETIME",
        "MAX_COSIGNERS",
        "MAX_BODY_DEPTH",
        "MAX_BODY_JSON_BYTES",
        "MIN_SECRET_KEY_OPSLIMIT",
        "MAX_SECRET_KEY_OPSLIMIT",
        "MIN_SECRET_KEY_MEMLIMIT",
        "MAX_SECRET_KEY_MEMLIMIT",
    ):
        assert f"`{name}`" in SPEC, name


def test_body_and_key_file_bounds_have_the_spec_values() -> None:
    assert f"`MAX_BODY_DEPTH` | {MAX_BODY_DEPTH} " in SPEC
    assert f"`MIN_SECRET_KEY_OPSLIMIT` = {constants.MIN_SECRET_KEY_OPSLIMIT} " in SPEC
    assert f"`MAX_SECRET_KEY_OPSLIMIT` = {constants.MAX_SECRET_KEY_OPSLIMIT}" in SPEC
    assert f"`MIN_SECRET_KEY_MEMLIMIT` = {constants.MIN_SECRET_KEY_MEMLIMIT} " in SPEC
    assert f"`MAX_SECRET_KEY_MEMLIMIT` = {constants.MAX_SECRET_KEY_MEMLIMIT} " in SPEC
