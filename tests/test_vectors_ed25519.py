"""C2SP/CCTV Ed25519 edge cases: the project's one verifier against its pinned outcomes.

specs/vectors/external/cctv-ed25519/expected.json pins ``accept``/``reject`` for each of the 914
vectors. Each vector is its own test. So that the file is not just the verifier compared with
itself, it is also checked against a rule derived from the vectors' flags alone:

    reject  iff  the flags include low_order_A, low_order_R, non_canonical_A, non_canonical_R
                 or low_order_residue;
    accept  otherwise: no flags (an ordinary signature) or only low_order_component_A and/or
                 low_order_component_R (mixed-order points, which a blocklist cannot catch and
                 libsodium's verifier does not reject).

``reencoded_k`` plays no part: it occurs only together with a non-canonical flag. On this data
the rule has no exceptions (RULE_EXCEPTIONS is empty).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from livcr_exchange.errors import BadSignature
from livcr_exchange.keys import verify_signature

ROOT = Path(__file__).resolve().parent.parent
VECTOR_DIR = ROOT / "specs" / "vectors" / "external" / "cctv-ed25519"
GENERATOR = ROOT / "specs" / "external_ed25519.py"
VECTORS: list[dict[str, Any]] = json.loads((VECTOR_DIR / "ed25519vectors.json").read_bytes())
EXPECTED: dict[str, Any] = json.loads((VECTOR_DIR / "expected.json").read_bytes())
OUTCOMES = {item["number"]: item["outcome"] for item in EXPECTED["outcomes"]}

VECTOR_COUNT = 914
ACCEPT_COUNT = 43  # libsodium as bundled with PyNaCl 1.6.2
PYCA_ACCEPT_COUNT = 208  # pyca/cryptography: the "classic" ref10 rule (see CCTV's README)
PYCA_DISAGREEMENTS = 165  # vectors pyca accepts and libsodium rejects; never the other way

# Each flag that on its own makes libsodium reject, and why.
REJECT_FLAGS = {
    "low_order_A": "small-order public key (libsodium's ge25519_has_small_order blocklist)",
    "low_order_R": "small-order R (the same blocklist, applied to the signature's R)",
    "non_canonical_A": "non-canonical public key encoding (ge25519_is_canonical)",
    "non_canonical_R": "non-canonical R: the recomputed R is re-encoded canonically, so no match",
    "low_order_residue": "verifies only with the cofactored equation; libsodium's is cofactorless",
}
# Flags that do not change libsodium's outcome by themselves.
NEUTRAL_FLAGS = {"low_order_component_A", "low_order_component_R", "reencoded_k"}
# Vectors whose libsodium outcome the flag rule does not predict. None on this data.
RULE_EXCEPTIONS: frozenset[int] = frozenset()


def flags(vector: dict[str, Any]) -> frozenset[str]:
    """The vector's flags; the ordinary signature among them has ``"flags": null``."""
    return frozenset(vector["flags"] or ())


def rule(vector: dict[str, Any]) -> str:
    return "reject" if flags(vector) & REJECT_FLAGS.keys() else "accept"


def parts(vector: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    """(public key, message, signature); ``msg`` is text, signed as its UTF-8 bytes."""
    return bytes.fromhex(vector["key"]), vector["msg"].encode("utf-8"), bytes.fromhex(vector["sig"])


def libsodium_outcome(vector: dict[str, Any]) -> str:
    try:
        verify_signature(*parts(vector))
    except BadSignature:
        return "reject"
    return "accept"


def pyca_outcome(vector: dict[str, Any]) -> str:
    public, message, signature = parts(vector)
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return "reject"
    return "accept"


@pytest.mark.parametrize("vector", VECTORS, ids=[f"ed25519_{v['number']}" for v in VECTORS])
def test_vector(vector: dict[str, Any]) -> None:
    assert libsodium_outcome(vector) == OUTCOMES[vector["number"]], sorted(flags(vector))


def test_expected_covers_every_vector_once() -> None:
    assert len(VECTORS) == VECTOR_COUNT
    assert [v["number"] for v in VECTORS] == list(range(VECTOR_COUNT))
    assert [item["number"] for item in EXPECTED["outcomes"]] == list(range(VECTOR_COUNT))
    assert set(OUTCOMES.values()) == {"accept", "reject"}
    assert EXPECTED["vector_count"] == VECTOR_COUNT


def test_accept_total_is_pinned() -> None:
    """A changed verifier (or libsodium build) that accepts more or fewer vectors fails here."""
    accepted = sum(outcome == "accept" for outcome in OUTCOMES.values())
    assert accepted == EXPECTED["accept_count"] == ACCEPT_COUNT
    assert sum(libsodium_outcome(v) == "accept" for v in VECTORS) == ACCEPT_COUNT


def test_flags_are_the_documented_ones() -> None:
    seen = set().union(*(flags(v) for v in VECTORS))
    assert seen == REJECT_FLAGS.keys() | NEUTRAL_FLAGS
    assert [v["number"] for v in VECTORS if v["flags"] is None] == [305]


def test_expected_follows_the_flag_rule() -> None:
    """expected.json agrees with the flags alone, except for the listed exceptions (none)."""
    differing = {v["number"] for v in VECTORS if rule(v) != OUTCOMES[v["number"]]}
    assert differing == RULE_EXCEPTIONS
    assert len(differing) == 0


def test_libsodium_follows_the_flag_rule() -> None:
    assert [v["number"] for v in VECTORS if rule(v) != libsodium_outcome(v)] == []


def test_accepted_vectors_are_ordinary_or_mixed_order_only() -> None:
    accepted = {flags(v) for v in VECTORS if OUTCOMES[v["number"]] == "accept"}
    assert accepted == {
        frozenset(),
        frozenset({"low_order_component_A"}),
        frozenset({"low_order_component_A", "low_order_component_R"}),
    }


def test_each_reject_flag_is_rejected_wherever_it_occurs() -> None:
    for flag in REJECT_FLAGS:
        carrying = [v for v in VECTORS if flag in flags(v)]
        assert carrying, flag
        assert {OUTCOMES[v["number"]] for v in carrying} == {"reject"}, flag


def test_non_canonical_vectors_are_all_low_order() -> None:
    """On this data the non-canonical clauses are implied by the low-order ones.

    CCTV's non-canonical encodings are all of low-order points, so the rule's non-canonical
    clauses are not exercised independently; reencoded_k occurs only with a non-canonical flag.
    """
    for vector in VECTORS:
        found = flags(vector)
        if "non_canonical_A" in found:
            assert "low_order_A" in found
        if "non_canonical_R" in found:
            assert "low_order_R" in found
        if "reencoded_k" in found:
            assert found & {"non_canonical_A", "non_canonical_R"}


def test_messages_are_utf8_text() -> None:
    assert all(isinstance(v["msg"], str) and v["msg"].isascii() for v in VECTORS)
    ordinary = VECTORS[305]
    assert libsodium_outcome(ordinary) == "accept"
    public, message, signature = parts(ordinary)
    with pytest.raises(BadSignature):
        verify_signature(public, message + b"\n", signature)


def test_input_is_the_pinned_copy() -> None:
    data = (VECTOR_DIR / "ed25519vectors.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == EXPECTED["input_sha256"]


def test_regenerating_changes_no_byte(tmp_path: Path) -> None:
    shutil.copyfile(VECTOR_DIR / "ed25519vectors.json", tmp_path / "ed25519vectors.json")
    spec = importlib.util.spec_from_file_location("external_ed25519", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.main(["external_ed25519.py", str(tmp_path)]) == 0
    assert (tmp_path / "expected.json").read_bytes() == (VECTOR_DIR / "expected.json").read_bytes()


def test_pyca_cryptography_disagrees_with_libsodium() -> None:
    """Why the project pins one verifier: pyca/cryptography decides 165 vectors differently.

    pyca follows the "classic" rule (reject only non_canonical_R and low_order_residue) and so
    accepts small-order keys and R values that libsodium blocklists; libsodium never accepts a
    vector that pyca rejects.
    """
    pyca = {v["number"]: pyca_outcome(v) for v in VECTORS}
    assert sum(outcome == "accept" for outcome in pyca.values()) == PYCA_ACCEPT_COUNT
    classic = {
        v["number"]: "reject" if flags(v) & {"non_canonical_R", "low_order_residue"} else "accept"
        for v in VECTORS
    }
    assert pyca == classic
    differing = [n for n in OUTCOMES if pyca[n] != OUTCOMES[n]]
    assert len(differing) == PYCA_DISAGREEMENTS
    assert all(pyca[n] == "accept" and OUTCOMES[n] == "reject" for n in differing)
    assert all(flags(VECTORS[n]) & {"low_order_A", "low_order_R"} for n in differing)
