"""Pin the project's outcome for every C2SP/CCTV Ed25519 edge-case vector.

Reads ``ed25519vectors.json`` (copied unchanged from C2SP/CCTV, see PROVENANCE.md beside it) and
writes ``expected.json`` beside it: for every vector number, ``accept`` or ``reject`` as
``livcr_exchange.keys.verify_signature`` (libsodium, the project's one Ed25519 verifier) decides.
The output is deterministic: sorted keys, indent 1, one trailing newline.

``msg`` is text; as in CCTV's own test (``[]byte(v.Message)`` in Go) it is signed as its UTF-8
bytes. ``key`` and ``sig`` are hex.

tests/test_vectors_ed25519.py checks the result against a rule derived from the vectors' flags, so
the file is not merely the verifier compared with itself.

Usage: python specs/external_ed25519.py [VECTOR_DIR]
(default VECTOR_DIR: specs/vectors/external/cctv-ed25519)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from livcr_exchange.errors import BadSignature
from livcr_exchange.keys import verify_signature

DEFAULT_DIR = Path(__file__).parent / "vectors" / "external" / "cctv-ed25519"
INPUT_NAME = "ed25519vectors.json"
OUTPUT_NAME = "expected.json"
SOURCE = "C2SP/CCTV ed25519/ed25519vectors.json"
VERIFIER = "livcr_exchange.keys.verify_signature (libsodium crypto_sign_verify_detached, PyNaCl)"
ACCEPT = "accept"
REJECT = "reject"


def vector_message(vector: dict[str, Any]) -> bytes:
    """The signed message: the ``msg`` text as UTF-8 bytes."""
    message: str = vector["msg"]
    return message.encode("utf-8")


def outcome(vector: dict[str, Any]) -> str:
    """``accept`` if the project's verifier accepts the vector's signature, else ``reject``."""
    try:
        verify_signature(
            bytes.fromhex(vector["key"]), vector_message(vector), bytes.fromhex(vector["sig"])
        )
    except BadSignature:
        return REJECT
    return ACCEPT


def load_vectors(data: bytes) -> list[dict[str, Any]]:
    """Parse the CCTV file; numbers must be 0..n-1 in order so that a number names one vector."""
    vectors: list[dict[str, Any]] = json.loads(data)
    numbers = [v["number"] for v in vectors]
    if numbers != list(range(len(vectors))):
        raise ValueError(f"{INPUT_NAME}: vector numbers are not 0..{len(vectors) - 1} in order")
    return vectors


def generate(vector_dir: Path) -> bytes:
    """The bytes of expected.json for the vectors in ``vector_dir``."""
    data = (vector_dir / INPUT_NAME).read_bytes()
    vectors = load_vectors(data)
    outcomes = [{"number": v["number"], "outcome": outcome(v)} for v in vectors]
    document = {
        "source": SOURCE,
        "input": INPUT_NAME,
        "input_sha256": hashlib.sha256(data).hexdigest(),
        "verifier": VERIFIER,
        "message_encoding": "utf-8",
        "vector_count": len(outcomes),
        "accept_count": sum(o["outcome"] == ACCEPT for o in outcomes),
        "outcomes": outcomes,
    }
    return (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode()


def main(argv: list[str]) -> int:
    vector_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_DIR
    data = generate(vector_dir)
    (vector_dir / OUTPUT_NAME).write_bytes(data)
    summary = json.loads(data)
    print(
        f"wrote {vector_dir / OUTPUT_NAME} ({len(data)} bytes): "
        f"{summary['accept_count']} of {summary['vector_count']} accepted"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
