"""RFC 9162 §2.1 Merkle tree hashing: tree heads, proof generation and proof verification.

Generation needs only subtree hashes, through the ``SubtreeHashes`` protocol, so a hub can serve
proofs from whatever storage it keeps; ``LeafHashList`` is the in-memory implementation.
Verification follows the RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms step by step, with the
edge cases of transparency-dev/merkle (the Go reference whose test data the tests run).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Protocol

from ..errors import ProofInvalid
from ..hashing import sha256

HASH_SIZE: Final = 32
# RFC 9162 tree sizes and indices are uint64; larger values are refused before any work.
MAX_TREE_SIZE: Final = 2**64 - 1
# RFC 9162 §2.1.1: MTH({}) = SHA-256() for the empty tree.
EMPTY_ROOT: Final = sha256(b"")

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d}) = SHA-256(0x00 || d)."""
    return sha256(_LEAF_PREFIX + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of an interior node, SHA-256(0x01 || left || right)."""
    return sha256(_NODE_PREFIX + left + right)


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (size >= 2): where RFC 9162 splits D[n]."""
    return 1 << ((size - 1).bit_length() - 1)


class SubtreeHashes(Protocol):
    """A source of Merkle tree hashes over a growing list of leaves."""

    def subtree_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for 0 <= start < end <= number of leaves.

        The generators below ask only for ranges whose ``start`` is a multiple of the largest
        power of two not above ``end - start`` (the subtrees of RFC 9162's recursive split), so
        an implementation may answer those fast and others slowly.

        Raises:
            ValueError: the range is empty or reaches past the last leaf.
        """
        ...


# Tree sizes whose right-border subtree hashes LeafHashList keeps (see ``_border``).
BORDER_SIZES: Final = 8


class LeafHashList:
    """An append-only in-memory list of leaf hashes that keeps every complete perfect subtree.

    ``_levels[h][i]`` is the hash of leaves [i * 2**h, (i + 1) * 2**h). A perfect subtree never
    changes once its last leaf is appended, so it is hashed exactly once (about 2n hashes in
    all, amortised O(1) per append), and any aligned subtree hash costs O(log n) node hashes.

    The other subtrees the generators ask for lie on the right border of a tree of some size n:
    [start, n) for the O(log n) split points of n. Their hashes are kept for the last
    BORDER_SIZES sizes, so the root and the inclusion proofs of one tree size (a hub answers
    every envelope of a group commit against the same size) hash that border once between them,
    instead of once per proof; a proof then costs O(log n) lookups.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        # end -> start -> MTH(D[start:end]) for ranges that are not perfect subtrees. A range
        # inside the list never changes (the list is append-only), so nothing here goes stale.
        self._border: dict[int, dict[int, bytes]] = {}
        for item in leaf_hashes:
            self.append(item)

    def __len__(self) -> int:
        return len(self._levels[0])

    def append(self, leaf_hash: bytes) -> int:
        """Add a leaf hash and return its index.

        Raises:
            ValueError: the leaf hash is not 32 bytes.
        """
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        index = len(self)
        self._levels[0].append(bytes(leaf_hash))
        level = 0
        # A level of even length has just completed a pair: their parent is now final.
        while len(self._levels[level]) % 2 == 0:
            row = self._levels[level]
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._levels[level + 1].append(node_hash(row[-2], row[-1]))
            level += 1
        return index

    def append_data(self, data: bytes) -> int:
        """Add a leaf by its data (hashed with ``leaf_hash``) and return its index."""
        return self.append(leaf_hash(data))

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``. Raises IndexError outside the list."""
        if not 0 <= index < len(self):
            raise IndexError(f"leaf index {index} outside 0..{len(self) - 1}")
        return self._levels[0][index]

    def subtree_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]). Raises ValueError unless 0 <= start < end <= len(self)."""
        if not 0 <= start < end <= len(self):
            raise ValueError(f"subtree [{start}, {end}) is not inside 0..{len(self)} leaves")
        return self._hash(start, end)

    def _hash(self, start: int, end: int) -> bytes:
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            return self._levels[size.bit_length() - 1][start // size]
        border = self._border.get(end)
        if border is None:
            if len(self._border) >= BORDER_SIZES:
                del self._border[next(iter(self._border))]  # the size seen longest ago
            border = self._border[end] = {}
        value = border.get(start)
        if value is None:
            # RFC 9162 §2.1.1: MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n])), k the split point.
            k = _split(size)
            value = node_hash(self._hash(start, start + k), self._hash(start + k, end))
            border[start] = value
        return value


def _check_generation_size(size: int, what: str) -> None:
    if isinstance(size, bool) or not 0 <= size <= MAX_TREE_SIZE:
        raise ValueError(f"{what} {size!r} is not a tree size (0..2**64-1)")


def root_hash(tree: SubtreeHashes, size: int) -> bytes:
    """The Merkle tree hash of the first ``size`` leaves (RFC 9162 §2.1.1).

    Raises:
        ValueError: ``size`` is negative or larger than the tree.
    """
    _check_generation_size(size, "tree size")
    return EMPTY_ROOT if size == 0 else tree.subtree_hash(0, size)


def inclusion_proof(tree: SubtreeHashes, index: int, size: int) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves, leaf upwards.

    This is PATH(m, D[n]) of RFC 6962 §2.1.1 (RFC 9162 §2.1.3.1).

    Raises:
        ValueError: ``index`` is not below ``size``, or ``size`` is larger than the tree.
    """
    _check_generation_size(size, "tree size")
    if isinstance(index, bool) or not 0 <= index < size:
        raise ValueError(f"leaf index {index!r} is not below tree size {size}")
    _require_leaves(tree, size)
    return _path(tree, index, 0, size)


def _require_leaves(tree: SubtreeHashes, size: int) -> None:
    """Make the tree raise ValueError if it has fewer than ``size`` (> 0) leaves.

    PATH never reads the proven leaf itself, so without this a proof for a leaf the tree does not
    have yet could be produced.
    """
    tree.subtree_hash(size - 1, size)


def _path(tree: SubtreeHashes, index: int, start: int, end: int) -> list[bytes]:
    """PATH(index, D[start:end]), with ``index`` relative to ``start``.

    RFC 6962's recursion, PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k and
    PATH(m - k, D[k:n]) : MTH(D[0:k]) otherwise, unrolled into a loop from the root down (so
    the siblings come out root first and are reversed at the end).
    """
    siblings: list[bytes] = []
    while end - start > 1:
        k = _split(end - start)
        if index < k:
            siblings.append(tree.subtree_hash(start + k, end))
            end = start + k
        else:
            siblings.append(tree.subtree_hash(start, start + k))
            index -= k
            start += k
    siblings.reverse()
    return siblings


def consistency_proof(tree: SubtreeHashes, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``.

    This is PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 6962 §2.1.2 (RFC 9162 §2.1.4.1).
    Equal sizes give the empty proof. A proof from the empty tree is refused, as in
    transparency-dev/merkle: every tree extends the empty tree, so there is nothing to prove.

    Raises:
        ValueError: ``old_size`` is 0 or above ``new_size``, or ``new_size`` is larger than the
            tree.
    """
    _check_generation_size(old_size, "old tree size")
    _check_generation_size(new_size, "new tree size")
    if old_size == 0:
        raise ValueError("a consistency proof from the empty tree is meaningless")
    if old_size > new_size:
        raise ValueError(f"old tree size {old_size} is above new tree size {new_size}")
    _require_leaves(tree, new_size)
    if old_size == new_size:
        return []
    return _subproof(tree, old_size, 0, new_size, complete=True)


def _subproof(tree: SubtreeHashes, m: int, start: int, end: int, *, complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b) of RFC 6962 §2.1.2, with ``m`` relative to ``start``.

    ``complete`` is b: true while D[0:m] is still the whole subtree being proven, so its hash is
    known to the verifier and is left out.
    """
    size = end - start
    if m == size:
        return [] if complete else [tree.subtree_hash(start, end)]
    k = _split(size)
    if m <= k:
        right = tree.subtree_hash(start + k, end)
        return [*_subproof(tree, m, start, start + k, complete=complete), right]
    left = tree.subtree_hash(start, start + k)
    return [*_subproof(tree, m - k, start + k, end, complete=False), left]


def inclusion_proof_length(index: int, size: int) -> int:
    """How many hashes the inclusion proof of leaf ``index`` in a tree of ``size`` has.

    The path splits where the paths to ``index`` and to the last leaf diverge: below that
    point every level has a sibling ("inner"); above it only the levels where ``index`` is a
    right child do ("border"). Requires 0 <= index < size.
    """
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """How many hashes the consistency proof between two sizes has (0 < old_size < new_size).

    It is the inclusion proof of leaf old_size - 1 without the levels inside the largest perfect
    subtree ending at old_size, plus that subtree's hash unless it is the whole old tree.
    """
    inclusion = inclusion_proof_length(old_size - 1, new_size)
    shift = (old_size & -old_size).bit_length() - 1  # trailing zero bits of old_size
    seed = 0 if old_size == 1 << shift else 1
    return seed + inclusion - shift


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofInvalid(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, item in enumerate(proof):
        _check_hash(item, f"proof hash {position}")


def _check_verify_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not 0 <= value <= MAX_TREE_SIZE:
        raise ProofInvalid(f"{what} {value!r} is outside 0..2**64-1")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    The algorithm is RFC 9162 §2.1.3.2. Before it runs, every hash must be 32 bytes and the
    proof must have exactly the length the index and size imply, so each failure has its own
    message.

    Raises:
        ProofInvalid: index or size out of range (index >= size included), a hash that is not
            32 bytes, a proof of the wrong length, or a proof that does not lead to ``root``.
    """
    _check_verify_size(index, "leaf index")
    _check_verify_size(size, "tree size")
    if index >= size:
        raise ProofInvalid(f"leaf index {index} is not below tree size {size}")
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root hash")
    _check_proof_hashes(proof)
    expected = inclusion_proof_length(index, size)
    if len(proof) != expected:
        raise ProofInvalid(
            f"inclusion proof has {len(proof)} hashes; leaf {index} of {size} needs {expected}"
        )
    if _root_from_inclusion(leaf_hash, index, size, proof) != root:
        raise ProofInvalid(f"inclusion proof for leaf {index} of {size} does not match the root")


def _root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2 steps 2-5; the length checks repeat the RFC's, in case of a caller
    that skipped ``verify_inclusion``'s."""
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofInvalid("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # On the right border: climb past the levels where this node has no right sibling.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofInvalid("inclusion proof is shorter than the path to the root")
    return r


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``old_size`` leaves with ``old_root`` is a prefix of the tree of
    ``new_size`` leaves with ``new_root``.

    The edge cases follow transparency-dev/merkle: ``old_size`` above ``new_size`` fails; an
    ``old_size`` of 0 fails (a proof from the empty tree is meaningless, even to an empty new
    tree); equal sizes need an empty proof and byte-equal roots (their length is not checked
    there, as in the reference: the caller's checkpoints already fixed it). Otherwise the proof
    must not be empty, every hash must be 32 bytes, the length must be the one the sizes imply,
    and RFC 9162 §2.1.4.2 must reproduce both roots.

    Raises:
        ProofInvalid: any of the above fails.
    """
    _check_verify_size(old_size, "old tree size")
    _check_verify_size(new_size, "new tree size")
    if old_size > new_size:
        raise ProofInvalid(f"old tree size {old_size} is above new tree size {new_size}")
    if old_size == 0:
        raise ProofInvalid("a consistency proof from the empty tree is meaningless")
    if old_size == new_size:
        if proof:
            raise ProofInvalid(f"equal tree sizes need an empty proof, got {len(proof)} hashes")
        if old_root != new_root:
            raise ProofInvalid(f"roots differ for the same tree size {old_size}")
        return
    if not proof:
        raise ProofInvalid(f"empty consistency proof from size {old_size} to {new_size}")
    # The reference skips these length checks; without them a short old root plus a long first
    # proof hash can concatenate to the bytes of a genuine pair and pass.
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    _check_proof_hashes(proof)
    expected = consistency_proof_length(old_size, new_size)
    if len(proof) != expected:
        raise ProofInvalid(
            f"consistency proof has {len(proof)} hashes; {old_size} to {new_size} needs {expected}"
        )
    old_calc, new_calc = _roots_from_consistency(old_size, new_size, old_root, proof)
    if old_calc != old_root:
        raise ProofInvalid(f"consistency proof does not reproduce the old root (size {old_size})")
    if new_calc != new_root:
        raise ProofInvalid(f"consistency proof does not reproduce the new root (size {new_size})")


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2-7 for 0 < old_size < new_size: the (old, new) roots computed."""
    path = list(proof)
    # Step 2: when the old tree is perfect, its root is the subtree the proof starts from.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    # Step 4: skip the levels inside the largest perfect subtree ending at old_size.
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofInvalid("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofInvalid("consistency proof is shorter than the path to the root")
    return fr, sr
