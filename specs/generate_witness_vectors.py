"""Witness vectors (spec §10.6-§10.8): cosignatures, cosigned checkpoints, add-checkpoint, policy.

Called by generate_vectors.py, which writes ``witness.json`` with the other areas; every value
derives from fixed seeds and fixed times, so regenerating changes no byte.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterator
from typing import Any

import nacl.utils

from livcr_exchange.audit.checkpoint import Checkpoint, sign_checkpoint
from livcr_exchange.audit.cosignature import WitnessKey, cosign
from livcr_exchange.audit.merkle import LeafHashList, consistency_proof, leaf_hash, root_hash
from livcr_exchange.audit.witness import AddCheckpoint
from livcr_exchange.hashing import labelled_hash
from livcr_exchange.keys import IdentityKey
from livcr_exchange.witness_policy import WitnessPolicy

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z, as in generate_vectors.py
ORIGIN = "livcr-exchange/cell-vectors"
CELL = "cell-vectors"
DESCRIPTION = (
    "Witness cosignatures (C2SP tlog-cosignature v1), cosigned checkpoints against a quorum, "
    "add-checkpoint decisions (C2SP tlog-witness) and the root-signed witness policy "
    "(spec §10.6-§10.8)."
)


def det(label: str, size: int) -> bytes:
    seed = labelled_hash(b"livcr-exchange/v1 test vectors\x00", label.encode())
    value: bytes = nacl.utils.randombytes_deterministic(size, seed)
    return value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Fixture:
    """The log, its tree, three witnesses and the cell root, all from fixed seeds."""

    def __init__(self) -> None:
        self.log_key = IdentityKey.from_seed(det("log key", 32))
        self.tree = LeafHashList(leaf_hash(det(f"leaf {i}", 40)) for i in range(9))
        self.root_key = IdentityKey.from_seed(det("root", 32))
        self.witness_keys = {
            name: IdentityKey.from_seed(det(f"witness {name}", 32))
            for name in ("witness.example/a", "witness.example/b", "witness.example/c")
        }
        self.stranger = IdentityKey.from_seed(det("stranger witness", 32))

    def witness(self, name: str) -> WitnessKey:
        return WitnessKey(name, self.witness_keys[name].public.raw)

    def vkeys(self) -> list[str]:
        return [self.witness(name).vkey() for name in self.witness_keys]

    def checkpoint(self, size: int) -> Checkpoint:
        return Checkpoint(ORIGIN, size, root_hash(self.tree, size))

    def note(self, size: int) -> bytes:
        return sign_checkpoint(self.checkpoint(size), ORIGIN, self.log_key)

    def line(self, size: int, name: str, timestamp: int, key: IdentityKey | None = None) -> bytes:
        signer = self.witness_keys[name] if key is None else key
        return cosign(self.checkpoint(size).body(), name, signer, timestamp)


def _retime(line: bytes, timestamp: int) -> bytes:
    """The same line with another timestamp and the old signature (so it no longer verifies)."""
    prefix, encoded = line.decode().rstrip("\n").rsplit(" ", 1)
    raw = base64.b64decode(encoded)
    raw = raw[:4] + struct.pack(">Q", timestamp) + raw[12:]
    return f"{prefix} {b64(raw)}\n".encode()


def cosignature_vectors(fx: Fixture) -> Iterator[dict[str, Any]]:
    body = fx.checkpoint(7).body()
    good = fx.line(7, "witness.example/a", NOW)

    def vector(name: str, expect: str, line: bytes, **fields: Any) -> dict[str, Any]:
        return {
            "kind": "cosignature",
            "name": name,
            "expect": expect,
            "witness": fx.witness("witness.example/a").vkey(),
            "body": body.decode(),
            "line": line.decode(),
            **fields,
        }

    yield vector(
        "cosignature_ok",
        "ok",
        good,
        timestamp=NOW,
        signed_message=("cosignature/v1\n" + f"time {NOW}\n" + body.decode()),
        comment="the Ed25519 signature covers signed_message; key id is "
        "SHA-256(name || 0x0A || 0x04 || public key)[:4]",
    )
    yield vector("cosignature_bad_timestamp", "cosignature_invalid", _retime(good, NOW + 1))
    yield vector(
        "cosignature_wrong_key",
        "cosignature_invalid",
        fx.line(7, "witness.example/a", NOW, fx.stranger),
        comment="the right name, another key: the key id does not match, the line is not theirs",
    )
    yield vector(
        "cosignature_note_key_type",
        "cosignature_invalid",
        _note_type_line(fx),
        comment="a plain signed-note Ed25519 signature (type 0x01 key id) is not a cosignature",
    )


def _note_type_line(fx: Fixture) -> bytes:
    name = "witness.example/a"
    signed = sign_checkpoint(fx.checkpoint(7), name, fx.witness_keys[name])
    return signed.split(b"\n\n")[-1]


def cosigned_vectors(fx: Fixture) -> Iterator[dict[str, Any]]:
    note = fx.note(7)

    def vector(name: str, expect: str, lines: list[bytes], **fields: Any) -> dict[str, Any]:
        return {
            "kind": "cosigned_checkpoint",
            "name": name,
            "expect": expect,
            "note": (note + b"".join(lines)).decode(),
            "log_key_name": ORIGIN,
            "log_public_key": fx.log_key.public.to_text(),
            "witnesses": fx.vkeys(),
            "quorum": 2,
            "now": NOW,
            **fields,
        }

    line_a = fx.line(7, "witness.example/a", NOW - 10)
    line_b = fx.line(7, "witness.example/b", NOW - 5)
    stranger = fx.line(7, "witness.example/elsewhere", NOW, fx.stranger)
    yield vector(
        "cosigned_checkpoint_ok",
        "ok",
        [line_a, line_b, stranger],
        cosigners=["witness.example/a", "witness.example/b"],
        comment="two of three known witnesses; the unknown witness's line is ignored",
    )
    yield vector(
        "cosigned_checkpoint_bad_timestamp",
        "cosignature_invalid",
        [line_a, _retime(line_b, NOW - 4)],
        comment="a known witness's line that does not verify makes the note invalid",
    )
    yield vector(
        "cosigned_checkpoint_future_timestamp",
        "timestamp_out_of_window",
        [line_a, fx.line(7, "witness.example/b", NOW + 301)],
    )
    yield vector(
        "cosigned_checkpoint_wrong_key",
        "quorum_not_met",
        [line_a, fx.line(7, "witness.example/b", NOW, fx.stranger)],
        comment="b's name with another key: ignored as an unknown key, so one of two",
    )
    yield vector("cosigned_checkpoint_missing_quorum", "quorum_not_met", [line_a])
    yield vector(
        "cosigned_checkpoint_same_witness_twice",
        "quorum_not_met",
        [line_a, fx.line(7, "witness.example/a", NOW - 3)],
        comment="a witness counts once however many lines it adds",
    )
    yield vector(
        "cosigned_checkpoint_not_the_log",
        "checkpoint_invalid",
        [line_a, line_b],
        log_public_key=fx.stranger.public.to_text(),
    )


def add_checkpoint_vectors(fx: Fixture) -> Iterator[dict[str, Any]]:
    log = {"origin": ORIGIN, "key_name": ORIGIN, "public_key": fx.log_key.public.to_text()}

    def vector(
        name: str, expect: str, request: bytes, last: int | None, **fields: Any
    ) -> dict[str, Any]:
        state = None if last is None else {"size": last, "root": root_hash(fx.tree, last).hex()}
        return {
            "kind": "add_checkpoint",
            "name": name,
            "expect": expect,
            "log": log,
            "last": state,
            "request": request.decode(),
            **fields,
        }

    def request(old: int, new: int, proof: list[bytes] | None = None) -> bytes:
        hashes = consistency_proof(fx.tree, old, new) if proof is None and old else proof or []
        return AddCheckpoint(old, tuple(hashes), fx.note(new)).encode()

    yield vector("add_checkpoint_ok_first", "ok", request(0, 4), None, size=4)
    yield vector("add_checkpoint_ok_extension", "ok", request(4, 7), 4, size=7)
    yield vector("add_checkpoint_ok_same", "ok", request(7, 7), 7, size=7)
    yield vector(
        "add_checkpoint_rollback",
        "witness_conflict",
        request(4, 5),
        7,
        comment="answer 409 with body '7\\n' (text/x.tlog.size)",
    )
    yield vector("add_checkpoint_stale_old_size", "witness_conflict", request(0, 7), 4)
    fork = LeafHashList(fx.tree.leaf(i) for i in range(4))
    for i in range(3):
        fork.append(leaf_hash(det(f"forked leaf {i}", 40)))
    forked_note = sign_checkpoint(Checkpoint(ORIGIN, 7, root_hash(fork, 7)), ORIGIN, fx.log_key)
    forked = AddCheckpoint(5, tuple(consistency_proof(fork, 5, 7)), forked_note).encode()
    yield vector(
        "add_checkpoint_fork_same_size",
        "proof_invalid",
        AddCheckpoint(7, (), forked_note).encode(),
        7,
        comment="another root for the size cosigned last: 422",
    )
    yield vector(
        "add_checkpoint_fork_extension",
        "proof_invalid",
        forked,
        5,
        comment="the forked tree's own proof from 5: leaf 4 differs, so it does not start from "
        "the root the witness cosigned at 5",
    )
    yield vector(
        "add_checkpoint_proof_from_zero", "proof_invalid", request(0, 4, [fx.tree.leaf(0)]), None
    )
    yield vector("add_checkpoint_old_above_new", "malformed", request(7, 4, []), 7)
    yield vector(
        "add_checkpoint_no_blank_line",
        "malformed",
        request(4, 7).replace(b"\n\n", b"\n", 1),
        4,
    )
    yield vector(
        "add_checkpoint_leading_zero", "malformed", b"old 04" + request(4, 7)[len(b"old 4") :], 4
    )
    yield vector(
        "add_checkpoint_unsigned",
        "checkpoint_invalid",
        AddCheckpoint(4, tuple(consistency_proof(fx.tree, 4, 7)), _foreign(fx, 7)).encode(),
        4,
        comment="answer 403",
    )
    other = sign_checkpoint(
        Checkpoint("livcr-exchange/other-cell", 7, root_hash(fx.tree, 7)), ORIGIN, fx.log_key
    )
    yield vector(
        "add_checkpoint_unknown_origin",
        "unknown_log",
        AddCheckpoint(0, (), other).encode(),
        None,
        comment="answer 404",
    )


def _foreign(fx: Fixture, size: int) -> bytes:
    return sign_checkpoint(fx.checkpoint(size), ORIGIN, fx.stranger)


def policy_vectors(fx: Fixture) -> Iterator[dict[str, Any]]:
    witnesses = tuple(fx.witness(name) for name in sorted(fx.witness_keys))
    policy = WitnessPolicy(CELL, 3, 2, witnesses)
    signed = policy.sign(fx.root_key)

    def vector(name: str, expect: str, statement: bytes, **fields: Any) -> dict[str, Any]:
        return {
            "kind": "witness_policy",
            "name": name,
            "expect": expect,
            "root_key": fx.root_key.public.to_text(),
            "cell_id": CELL,
            "statement": b64(statement),
            **fields,
        }

    yield vector("witness_policy_ok", "ok", signed, sequence=3, quorum=2, witnesses=fx.vkeys())
    yield vector("witness_policy_not_root", "bad_signature", policy.sign(fx.stranger))
    body = bytearray(policy.encode())
    quorum_at = 1 + 1 + len(CELL) + 8
    body[quorum_at] = 4
    yield vector(
        "witness_policy_quorum_too_high",
        "malformed",
        bytes(body) + fx.root_key.sign(b"livcr-exchange/v1 witness policy\x00" + bytes(body)),
        comment="quorum 4 of 3 witnesses; re-signed by the root to reach the check",
    )
    other = WitnessPolicy("another-cell", 3, 2, witnesses).sign(fx.root_key)
    yield vector("witness_policy_other_cell", "malformed", other)


def witness_key_vectors(fx: Fixture) -> Iterator[dict[str, Any]]:
    good = fx.witness("witness.example/a")
    vkey = good.vkey()
    name, key_id, material = vkey.split("+")

    def vector(name_: str, expect: str, text: str, **fields: Any) -> dict[str, Any]:
        return {"kind": "witness_key", "name": name_, "expect": expect, "vkey": text, **fields}

    yield vector(
        "witness_key_ok", "ok", vkey, witness=name, public_key=good.public.hex(), key_id=key_id
    )
    wrong_id = f"{int(key_id, 16) ^ 1:08x}"
    yield vector("witness_key_wrong_key_id", "malformed", f"{name}+{wrong_id}+{material}")
    note_type = b64(b"\x01" + good.public)
    yield vector("witness_key_note_type", "malformed", f"{name}+{key_id}+{note_type}")


GENERATORS: list[Callable[[Fixture], Iterator[dict[str, Any]]]] = [
    witness_key_vectors,
    cosignature_vectors,
    cosigned_vectors,
    add_checkpoint_vectors,
    policy_vectors,
]


def witness_vectors() -> list[dict[str, Any]]:
    fx = Fixture()
    return [vector for generator in GENERATORS for vector in generator(fx)]
