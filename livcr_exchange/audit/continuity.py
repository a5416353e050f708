"""The rule a log's reader holds two signed checkpoints to (spec §10): the same size has one
root, and a larger tree extends a smaller one, as a consistency proof shows."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ProofInvalid
from .checkpoint import Checkpoint
from .merkle import verify_consistency


def proof_needed(old: Checkpoint, new: Checkpoint) -> tuple[int, int] | None:
    """The (smaller, larger) sizes whose consistency proof links two checkpoints; None when
    none is needed (the same tree, or an empty one).

    Raises:
        ProofInvalid: two different roots for one tree size (the log forked).
    """
    if new.size == old.size:
        if new.root != old.root:
            raise ProofInvalid(f"two different roots for tree size {new.size}")
        return None
    small, large = sorted((old.size, new.size))
    return None if small == 0 else (small, large)


def check_consistent(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check ``proof`` links the two checkpoints (either may be the larger).

    Raises:
        ProofInvalid: it does not: the larger tree does not extend the smaller one.
    """
    small, large = (old, new) if old.size < new.size else (new, old)
    verify_consistency(small.size, large.size, small.root, large.root, proof)
