"""The external suites run as vectors: hpke-pq X-Wing (KEM 0x647A) and the one summary line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from livcr_cli import main
from livcr_exchange.conformance import run_vector
from livcr_exchange.external_vectors import HpkeXWingVector, hpke_xwing_vectors, xwing_decapsulate
from livcr_exchange.keys import PrekeySecret, Suite
from livcr_exchange.service.vectors import load_all_vectors, load_external_dir, load_vector_dir

ROOT = Path(__file__).resolve().parent.parent
VECTOR_DIR = ROOT / "specs" / "vectors"
HPKE_DIR = VECTOR_DIR / "external" / "hpke-pq"
HPKE_FILE = HPKE_DIR / "test-vectors-0x647a.json"
HPKE_SHA256 = "3f9e95ecb8e81b115a3d5dc978e8c8600dee338fceb7dbbd36dcbc0cfa99ba28"
XWING = hpke_xwing_vectors(HPKE_FILE.read_bytes())
EXTERNAL_COUNTS = {"ed25519_cctv": 914, "merkle_td": 196, "hpke_xwing": 2}


@pytest.mark.parametrize("vector", XWING, ids=[v.name for v in XWING])
def test_hpke_pq_xwing_vector(vector: HpkeXWingVector) -> None:
    outcome = run_vector(vector)
    assert outcome.actual == outcome.expected == "ok", outcome.detail


@pytest.mark.parametrize("vector", XWING, ids=[v.name for v in XWING])
def test_decapsulating_enc_with_skrm_gives_the_shared_secret(vector: HpkeXWingVector) -> None:
    secret = PrekeySecret(Suite.XWING, bytes.fromhex(vector.sk_rm))  # the 32-byte seed (§6.1)
    assert len(secret.seed) == 32
    assert secret.public.raw.hex() == vector.pk_rm
    shared = xwing_decapsulate(secret.seed, bytes.fromhex(vector.enc))
    assert shared.hex() == vector.shared_secret


@pytest.mark.parametrize(
    ("field", "outcome"),
    [("pk_rm", "public_key_differs"), ("shared_secret", "shared_secret_differs")],
)
def test_a_changed_vector_fails(field: str, outcome: str) -> None:
    value = getattr(XWING[0], field)
    changed = msgspec.structs.replace(
        XWING[0], **{field: ("00" if value[:2] != "00" else "01") + value[2:]}
    )
    assert run_vector(changed).actual == outcome


def test_the_copy_is_the_two_0x647a_vectors_of_the_pinned_source() -> None:
    data = HPKE_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == HPKE_SHA256
    assert HPKE_SHA256 in (HPKE_DIR / "PROVENANCE.md").read_text()
    entries = json.loads(data)
    assert [(e["kem_id"], e["kdf_id"], e["aead_id"], e["mode"]) for e in entries] == [
        (0x647A, 1, 3, 0),
        (0x647A, 17, 3, 0),
    ]
    assert [v.name for v in XWING] == ["hpke_xwing_kdf_0001", "hpke_xwing_kdf_0011"]


def test_every_external_suite_is_loaded() -> None:
    external = load_external_dir(VECTOR_DIR / "external")
    for prefix, count in EXTERNAL_COUNTS.items():
        assert sum(v.name.startswith(prefix + "_") for v in external) == count, prefix
    assert len(external) == sum(EXTERNAL_COUNTS.values())
    names = [v.name for v in load_all_vectors(VECTOR_DIR)]
    assert len(names) == len(set(names))


def test_cli_prints_one_line_counting_every_suite() -> None:
    result = CliRunner().invoke(main, ["vectors", "verify", str(VECTOR_DIR)])
    assert result.exit_code == 0, result.output
    total = len(load_vector_dir(VECTOR_DIR)) + sum(EXTERNAL_COUNTS.values())
    assert result.output.splitlines() == [f"{total} passed, 0 failed"]
