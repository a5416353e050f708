"""The continuity rule between two checkpoints of one log (spec §10), in the core."""

from __future__ import annotations

import pytest

from livcr_exchange.audit.checkpoint import Checkpoint
from livcr_exchange.audit.continuity import check_consistent, proof_needed
from livcr_exchange.audit.merkle import (
    EMPTY_ROOT,
    LeafHashList,
    consistency_proof,
    leaf_hash,
    root_hash,
)
from livcr_exchange.errors import ProofInvalid

ORIGIN = "example.org/log"
TREE = LeafHashList(leaf_hash(bytes([i])) for i in range(7))


def head(size: int) -> Checkpoint:
    return Checkpoint(ORIGIN, size, root_hash(TREE, size) if size else EMPTY_ROOT)


def test_the_same_tree_needs_no_proof_and_a_second_root_is_a_fork() -> None:
    assert proof_needed(head(3), head(3)) is None
    assert proof_needed(head(0), head(5)) is None
    forked = Checkpoint(ORIGIN, 3, b"\x01" * 32)
    with pytest.raises(ProofInvalid, match="two different roots"):
        proof_needed(head(3), forked)


@pytest.mark.parametrize(("old", "new"), [(2, 5), (5, 2)])
def test_a_larger_tree_extends_the_smaller_either_way(old: int, new: int) -> None:
    assert proof_needed(head(old), head(new)) == (2, 5)
    proof = consistency_proof(TREE, 2, 5)
    check_consistent(head(old), head(new), proof)
    rewritten = LeafHashList([b"\x09" * 32, *(TREE.leaf(i) for i in range(1, 5))])
    with pytest.raises(ProofInvalid):
        check_consistent(head(2), Checkpoint(ORIGIN, 5, root_hash(rewritten, 5)), proof)
