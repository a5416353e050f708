"""Spec §4.2: the one text form of a key, and the code each other spelling gets."""

from __future__ import annotations

import pytest

from livcr_exchange.errors import LivcrError
from livcr_exchange.keys import IdentityPublicKey, PrekeyPublic, PrekeySecret, Suite


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("livcr-ed25519:" + "A" * 42 + "B", "non_canonical"),  # unused bits not zero
        ("livcr-ed25519:" + "A" * 43 + "=", "malformed"),  # padding
        ("livcr-ed25519:" + "A" * 42 + "+", "malformed"),  # standard, not url, alphabet
        ("livcr-ed25519:" + "A" * 41, "malformed"),  # 1 modulo 4
        ("livcr-ed25519:" + "A" * 42, "malformed"),  # 31 bytes
        ("livcr-x25519:" + "A" * 43, "malformed"),  # another prefix
        ("ed25519:" + "A" * 43, "malformed"),
    ],
)
def test_identity_key_texts_refuse_with_the_spec_codes(text: str, code: str) -> None:
    with pytest.raises(LivcrError) as caught:
        IdentityPublicKey.from_text(text)
    assert caught.value.code == code


def test_the_one_text_form_round_trips() -> None:
    assert IdentityPublicKey.from_text("livcr-ed25519:" + "A" * 43).raw == bytes(32)
    xwing = PrekeySecret(Suite.XWING, bytes(32)).public
    assert len(xwing.raw) == 1216
    assert PrekeyPublic.from_text(xwing.to_text()) == xwing
    with pytest.raises(LivcrError) as caught:
        PrekeyPublic.from_text(xwing.to_text()[:-3])  # a decoded length not the suite's
    assert caught.value.code == "malformed"
