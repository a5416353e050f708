"""The cell's witness policy: the root key's signed list of witnesses and its quorum (spec §10.8).

A statement of type 0x04, signed like the directory's (spec §5.3) but with its own label, so the
directory entry format is unchanged. The policy with the highest ``sequence`` a receiver has
verified is the one in force: a hub that serves an older one is not believed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .audit.cosignature import Coverage, WitnessKey, witness_coverage
from .constants import ED25519_PUBLIC_BYTES, LABEL_WITNESS_POLICY, SIGNATURE_BYTES
from .errors import Malformed
from .keys import IdentityKey, IdentityPublicKey
from .wire import Reader, Writer

WITNESS_POLICY_TYPE: Final = 0x04
MAX_WITNESSES: Final = 16
MAX_WITNESS_NAME_BYTES: Final = 255


@dataclass(frozen=True)
class WitnessPolicy:
    """Which witnesses vouch for the cell's log, and how many must (spec §10.8).

    A quorum of 0 (with any number of witnesses) means that no receipt is ever reported as
    witnessed; witnesses are still asked to cosign.
    """

    cell_id: str
    sequence: int
    quorum: int
    witnesses: tuple[WitnessKey, ...]

    def __post_init__(self) -> None:
        if len(self.witnesses) > MAX_WITNESSES:
            raise Malformed(f"{len(self.witnesses)} witnesses (at most {MAX_WITNESSES})")
        if not 0 <= self.quorum <= len(self.witnesses):
            raise Malformed(f"quorum {self.quorum} is not within 0..{len(self.witnesses)}")
        names = [w.name for w in self.witnesses]
        if names != sorted(set(names)):
            raise Malformed("witness names must be unique and in ascending order")
        if len({w.public for w in self.witnesses}) != len(self.witnesses):
            raise Malformed("two witnesses share one public key")

    def coverage(self, note: bytes, log_name: str, log_public: bytes, *, now: int) -> Coverage:
        """Count this policy's witnesses that validly cosign ``note`` (an auditor's count: a
        bad line is listed in ``invalid``, not raised).

        Raises:
            CheckpointInvalid: the note is not a checkpoint signed by the log key.
        """
        return witness_coverage(note, log_name, log_public, self.witnesses, now=now)

    def is_met(self, coverage: Coverage) -> bool:
        """Whether ``coverage`` reaches this policy's quorum (never, with quorum 0)."""
        return self.quorum > 0 and coverage.count() >= self.quorum

    def encode(self) -> bytes:
        writer = (
            Writer()
            .u8(WITNESS_POLICY_TYPE)
            .ident(self.cell_id)
            .u64(self.sequence)
            .u8(self.quorum)
            .u8(len(self.witnesses))
        )
        for witness in self.witnesses:
            writer.text(witness.name, MAX_WITNESS_NAME_BYTES).fixed(
                witness.public, ED25519_PUBLIC_BYTES
            )
        return writer.getvalue()

    @classmethod
    def decode(cls, body: bytes) -> WitnessPolicy:
        """Raises Malformed or NonCanonical."""
        reader = Reader(body, "witness policy")
        found = reader.u8()
        if found != WITNESS_POLICY_TYPE:
            raise Malformed(f"statement type {found:#04x}, expected a witness policy")
        cell_id = reader.ident("cell id")
        sequence, quorum, count = reader.u64(), reader.u8(), reader.u8()
        if count > MAX_WITNESSES:
            raise Malformed(f"{count} witnesses (at most {MAX_WITNESSES})")
        witnesses = tuple(
            WitnessKey(reader.text(MAX_WITNESS_NAME_BYTES), reader.fixed(ED25519_PUBLIC_BYTES))
            for _ in range(count)
        )
        reader.finish()
        return cls(cell_id, sequence, quorum, witnesses)

    def sign(self, root: IdentityKey) -> bytes:
        body = self.encode()
        return body + root.sign(LABEL_WITNESS_POLICY + body)

    @classmethod
    def open(cls, signed: bytes, root: IdentityPublicKey, cell_id: str) -> WitnessPolicy:
        """Verify the root's signature, then decode; the policy must be for ``cell_id``.

        Raises:
            BadSignature: not signed by the root key.
            Malformed: bad grammar, or a policy for another cell.
            NonCanonical: a field in a non-canonical form.
        """
        if len(signed) <= SIGNATURE_BYTES:
            raise Malformed("witness policy: too short to carry a signature")
        body, signature = signed[:-SIGNATURE_BYTES], signed[-SIGNATURE_BYTES:]
        root.verify(LABEL_WITNESS_POLICY + body, signature)
        policy = cls.decode(body)
        if policy.cell_id != cell_id:
            raise Malformed(f"witness policy is for cell {policy.cell_id!r}, not {cell_id!r}")
        return policy


def empty_policy(cell_id: str) -> WitnessPolicy:
    """The policy in force before the root signs one: no witnesses, quorum 0."""
    return WitnessPolicy(cell_id, 0, 0, ())
