"""RFC 9162 Merkle proofs: every transparency-dev/merkle test file, reference roots, properties.

The external data lives in specs/vectors/external/transparency-dev-merkle/ (see its
PROVENANCE.md). Each file is loaded strictly and run as its own test case, named by its path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Annotated

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livcr_exchange.audit import merkle
from livcr_exchange.audit.merkle import (
    EMPTY_ROOT,
    LeafHashList,
    consistency_proof,
    consistency_proof_length,
    inclusion_proof,
    inclusion_proof_length,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from livcr_exchange.errors import ProofInvalid

ROOT = Path(__file__).resolve().parent.parent
VECTOR_DIR = ROOT / "specs" / "vectors" / "external" / "transparency-dev-merkle"
MANIFEST_DIGEST = "b9ebca6061a41485e515d2909c5ce5eec2f0858429f2f01822ab8dd35beed803"

# RFC 6962 reference leaves and the roots of their first n (n = 1..8), as in
# transparency-dev/merkle's proof/verify_test.go; the valid test files use this tree.
REFERENCE_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
REFERENCE_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]

U64_MAX = 2**64 - 1
# msgspec cannot bound an int above int64, so the upper bound is checked in __post_init__.
U64 = Annotated[int, msgspec.Meta(ge=0)]


def check_u64(*values: int) -> None:
    if any(value > U64_MAX for value in values):
        raise ValueError("integer above 2**64-1")


class InclusionCase(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """One file under inclusion/: every key required, no others, no type coercion."""

    leaf_idx: U64
    tree_size: U64
    root: str
    leaf_hash: str
    proof: list[str] | None
    desc: str
    want_err: bool

    def __post_init__(self) -> None:
        check_u64(self.leaf_idx, self.tree_size)


class ConsistencyCase(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """One file under consistency/."""

    size1: U64
    size2: U64
    root1: str
    root2: str
    proof: list[str] | None
    desc: str
    want_err: bool

    def __post_init__(self) -> None:
        check_u64(self.size1, self.size2)


def unb64(text: str) -> bytes:
    """Strict standard base64 with padding: the one canonical spelling only."""
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not standard base64: {text!r}") from exc
    if base64.b64encode(data).decode("ascii") != text:
        raise ValueError(f"non-canonical base64: {text!r}")
    return data


def load_inclusion(data: bytes) -> InclusionCase:
    return msgspec.json.decode(data, type=InclusionCase)


def load_consistency(data: bytes) -> ConsistencyCase:
    return msgspec.json.decode(data, type=ConsistencyCase)


def vector_files(kind: str) -> list[Path]:
    return sorted((VECTOR_DIR / kind).rglob("*.json"), key=lambda p: p.as_posix())


def case_id(path: Path) -> str:
    return path.relative_to(VECTOR_DIR).with_suffix("").as_posix()


def inclusion_args(case: InclusionCase) -> tuple[bytes, int, int, list[bytes], bytes]:
    proof = [unb64(item) for item in case.proof or []]  # null is Go's nil: the empty proof
    return unb64(case.leaf_hash), case.leaf_idx, case.tree_size, proof, unb64(case.root)


def consistency_args(case: ConsistencyCase) -> tuple[int, int, bytes, bytes, list[bytes]]:
    proof = [unb64(item) for item in case.proof or []]
    return case.size1, case.size2, unb64(case.root1), unb64(case.root2), proof


INCLUSION_FILES = vector_files("inclusion")
CONSISTENCY_FILES = vector_files("consistency")


def reference_tree() -> LeafHashList:
    return LeafHashList(leaf_hash(data) for data in REFERENCE_LEAVES)


def tree_of(leaves: list[bytes]) -> LeafHashList:
    tree = LeafHashList()
    for data in leaves:
        tree.append_data(data)
    return tree


def naive_mth(leaves: list[bytes]) -> bytes:
    """MTH straight from the RFC 9162 §2.1.1 definition, for comparison."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:])).digest()


# --- the external test data, one test per file -------------------------------------------------


@pytest.mark.parametrize("path", INCLUSION_FILES, ids=[case_id(p) for p in INCLUSION_FILES])
def test_inclusion_vector(path: Path) -> None:
    case = load_inclusion(path.read_bytes())
    if case.want_err:
        with pytest.raises(ProofInvalid):
            verify_inclusion(*inclusion_args(case))
    else:
        verify_inclusion(*inclusion_args(case))


@pytest.mark.parametrize("path", CONSISTENCY_FILES, ids=[case_id(p) for p in CONSISTENCY_FILES])
def test_consistency_vector(path: Path) -> None:
    case = load_consistency(path.read_bytes())
    if case.want_err:
        with pytest.raises(ProofInvalid):
            verify_consistency(*consistency_args(case))
    else:
        verify_consistency(*consistency_args(case))


def test_vector_counts() -> None:
    inclusion = [load_inclusion(p.read_bytes()) for p in INCLUSION_FILES]
    consistency = [load_consistency(p.read_bytes()) for p in CONSISTENCY_FILES]
    assert len(inclusion) == 98
    assert len(consistency) == 98
    assert sum(not c.want_err for c in inclusion) == 6
    assert sum(not c.want_err for c in consistency) == 6


def test_folder_holds_only_the_vectors_and_provenance() -> None:
    files = {p.relative_to(VECTOR_DIR).as_posix() for p in VECTOR_DIR.rglob("*") if p.is_file()}
    others = {name for name in files if not name.endswith(".json")}
    assert others == {"PROVENANCE.md"}
    assert {name.split("/")[0] for name in files - others} == {"inclusion", "consistency"}


def test_manifest_digest_is_pinned() -> None:
    names = sorted(p.relative_to(VECTOR_DIR).as_posix() for p in VECTOR_DIR.rglob("*.json"))
    lines = "".join(
        f"{hashlib.sha256((VECTOR_DIR / name).read_bytes()).hexdigest()}  {name}\n"
        for name in names
    )
    assert hashlib.sha256(lines.encode("utf-8")).hexdigest() == MANIFEST_DIGEST
    assert MANIFEST_DIGEST in (VECTOR_DIR / "PROVENANCE.md").read_text(encoding="utf-8")


def test_loader_is_strict() -> None:
    good = (VECTOR_DIR / "inclusion" / "1" / "happy-path.json").read_bytes()
    load_inclusion(good)
    with pytest.raises(msgspec.ValidationError):
        load_inclusion(good.replace(b'"desc"', b'"description"'))  # unknown and missing key
    with pytest.raises(msgspec.ValidationError):
        load_inclusion(good.replace(b'"leafIdx": 0', b'"leafIdx": "0"'))  # no coercion
    with pytest.raises(msgspec.ValidationError):
        load_inclusion(good.replace(b'"leafIdx": 0', b'"leafIdx": -1'))
    with pytest.raises(msgspec.ValidationError):
        load_inclusion(good.replace(b'"leafIdx": 0', b'"leafIdx": 18446744073709551616'))
    with pytest.raises(msgspec.ValidationError):
        load_inclusion(good.replace(b'"wantErr": false', b'"wantErr": 0'))
    with pytest.raises(msgspec.ValidationError):
        load_consistency(good)  # an inclusion file is not a consistency case
    with pytest.raises(ValueError, match="non-canonical"):
        unb64("AB==")  # 0x00 with non-zero unused bits; canonical is AA==
    with pytest.raises(ValueError, match="not standard base64"):
        unb64("ab_-")


def test_valid_vectors_are_regenerated_from_the_reference_leaves() -> None:
    """Our generator reproduces the proofs of the valid files built on the reference tree."""
    tree = reference_tree()
    regenerated = 0
    for path in INCLUSION_FILES:
        case = load_inclusion(path.read_bytes())
        leaf, index, size, proof, root = inclusion_args(case)
        if case.desc == "happy path":
            assert root == root_hash(tree, size)
            assert leaf == tree.leaf(index)
            assert inclusion_proof(tree, index, size) == proof
            regenerated += 1
    for path in CONSISTENCY_FILES:
        pair = load_consistency(path.read_bytes())
        old, new, old_root, new_root, steps = consistency_args(pair)
        if pair.desc == "happy path":
            assert (old_root, new_root) == (root_hash(tree, old), root_hash(tree, new))
            assert consistency_proof(tree, old, new) == steps
            regenerated += 1
    assert regenerated == 10


# --- hashing and generation ------------------------------------------------------------------


def test_reference_roots() -> None:
    tree = reference_tree()
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert EMPTY_ROOT.hex() == empty
    assert root_hash(tree, 0) == EMPTY_ROOT
    assert [root_hash(tree, n) for n in range(1, 9)] == REFERENCE_ROOTS


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    )


def test_every_small_tree_exhaustively() -> None:
    """Trees of 1..20 leaves: every subtree hash, inclusion and consistency proof."""
    leaves = [bytes([i]) * (i % 5) + bytes([i]) for i in range(20)]
    tree = tree_of(leaves)
    roots = [root_hash(tree, n) for n in range(21)]
    assert roots == [naive_mth(leaves[:n]) for n in range(21)]
    for start in range(20):
        for end in range(start + 1, 21):
            assert tree.subtree_hash(start, end) == naive_mth(leaves[start:end])
    for size in range(1, 21):
        for index in range(size):
            proof = inclusion_proof(tree, index, size)
            assert len(proof) == inclusion_proof_length(index, size)
            verify_inclusion(leaf_hash(leaves[index]), index, size, proof, roots[size])
        for old in range(1, size + 1):
            proof = consistency_proof(tree, old, size)
            assert len(proof) == (consistency_proof_length(old, size) if old < size else 0)
            verify_consistency(old, size, roots[old], roots[size], proof)


def test_appends_hash_each_perfect_subtree_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def counting(left: bytes, right: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return node_hash(left, right)

    monkeypatch.setattr(merkle, "node_hash", counting)
    tree = LeafHashList()
    for i in range(1000):
        tree.append_data(i.to_bytes(4, "big"))
    assert calls == 1000 - (1000).bit_count()  # one per completed perfect subtree

    calls = 0
    root_hash(tree, 1000)
    assert calls <= 10  # the perfect subtrees of 1000 are stored; only the spine is hashed
    calls = 0
    for index in range(0, 1000, 97):
        inclusion_proof(tree, index, 999)
        consistency_proof(tree, index + 1, 999)
    # O(log^2 n) per proof, not O(n): 22 proofs of a 999-leaf tree.
    assert calls <= 22 * 10 * 10


def test_append_and_generation_errors() -> None:
    tree = tree_of([b"a", b"b", b"c"])
    with pytest.raises(ValueError, match="32 bytes"):
        tree.append(b"short")
    with pytest.raises(ValueError, match="not inside"):
        tree.subtree_hash(2, 4)
    with pytest.raises(ValueError, match="not inside"):
        tree.subtree_hash(1, 1)
    with pytest.raises(ValueError, match="not inside"):
        root_hash(tree, 4)
    with pytest.raises(ValueError, match="not a tree size"):
        root_hash(tree, -1)
    with pytest.raises(ValueError, match="not below"):
        inclusion_proof(tree, 3, 3)
    with pytest.raises(ValueError, match="not inside"):
        inclusion_proof(tree, 3, 4)
    with pytest.raises(ValueError, match="empty tree"):
        consistency_proof(tree, 0, 3)
    with pytest.raises(ValueError, match="above"):
        consistency_proof(tree, 3, 2)
    with pytest.raises(ValueError, match="not inside"):
        consistency_proof(tree, 3, 4)
    with pytest.raises(ValueError, match="not inside"):
        consistency_proof(tree, 4, 4)
    with pytest.raises(IndexError):
        tree.leaf(3)
    assert consistency_proof(tree, 3, 3) == []
    assert len(tree) == 3


# --- verification errors carry a precise message ---------------------------------------------


def test_inclusion_verification_messages() -> None:
    tree = tree_of([b"a", b"b", b"c", b"d", b"e"])
    root = root_hash(tree, 5)
    leaf = tree.leaf(2)
    proof = inclusion_proof(tree, 2, 5)
    verify_inclusion(leaf, 2, 5, proof, root)
    cases = [
        ((leaf, 5, 5, proof, root), "not below tree size"),
        ((leaf, -1, 5, proof, root), "outside"),
        ((leaf, 2, 2**64, proof, root), "outside"),
        ((leaf, True, 5, proof, root), "outside"),
        ((leaf[:31], 2, 5, proof, root), "leaf hash is 31 bytes"),
        ((leaf, 2, 5, proof, root + b"\x00"), "root hash is 33 bytes"),
        ((leaf, 2, 5, [*proof[:1], b"", *proof[2:]], root), "proof hash 1 is 0 bytes"),
        ((leaf, 2, 5, proof[:-1], root), "has 2 hashes; leaf 2 of 5 needs 3"),
        ((leaf, 2, 5, [*proof, root], root), "has 4 hashes"),
        ((leaf, 3, 5, proof, root), "does not match the root"),
    ]
    for args, message in cases:
        with pytest.raises(ProofInvalid, match=message):
            verify_inclusion(*args)


def test_consistency_verification_messages() -> None:
    tree = tree_of([b"a", b"b", b"c", b"d", b"e", b"f"])
    r3, r6 = root_hash(tree, 3), root_hash(tree, 6)
    proof = consistency_proof(tree, 3, 6)
    verify_consistency(3, 6, r3, r6, proof)
    cases = [
        ((6, 3, r6, r3, proof), "old tree size 6 is above new tree size 3"),
        ((0, 6, EMPTY_ROOT, r6, []), "empty tree is meaningless"),
        ((0, 0, EMPTY_ROOT, EMPTY_ROOT, []), "empty tree is meaningless"),
        ((-1, 6, r3, r6, proof), "outside"),
        ((3, 3, r3, r3, proof), "equal tree sizes need an empty proof"),
        ((3, 3, r3, r6, []), "roots differ"),
        ((3, 6, r3, r6, []), "empty consistency proof"),
        ((3, 6, r3[:12], r6, proof), "old root hash is 12 bytes"),
        ((3, 6, r3, b"", proof), "new root hash is 0 bytes"),
        ((3, 6, r3, r6, [*proof, b""]), "proof hash 4 is 0 bytes"),
        ((3, 6, r3, r6, proof[:-1]), "has 3 hashes; 3 to 6 needs 4"),
        ((3, 6, r6, r6, proof), "old root"),
        ((3, 6, r3, r3, proof), "new root"),
    ]
    for args, message in cases:
        with pytest.raises(ProofInvalid, match=message):
            verify_consistency(*args)
    verify_consistency(3, 3, r3, r3, [])


def test_short_old_root_cannot_borrow_bytes_from_the_proof() -> None:
    """Why hashes are length-checked: the reference (which does not) would accept this.

    From a perfect old tree (size 4) the old root is the seed and the first node hashed is
    H(0x01 || old root || proof[0]); moving bytes from the root into proof[0] keeps that input.
    """
    tree = tree_of([bytes([i]) for i in range(8)])
    r4, r8 = root_hash(tree, 4), root_hash(tree, 8)
    proof = consistency_proof(tree, 4, 8)
    assert len(proof) == 1
    verify_consistency(4, 8, r4, r8, proof)
    with pytest.raises(ProofInvalid, match="old root hash is 12 bytes"):
        verify_consistency(4, 8, r4[:12], r8, [r4[12:] + proof[0]])


def test_a_root_binds_the_size_only_through_its_checkpoint() -> None:
    """A proof checks (size, root) together: with another size's root the proof can pass.

    This is not a verifier flaw but a caller duty: take size and root from one signed checkpoint.
    """
    tree = tree_of([bytes([i]) for i in range(8)])
    r4, r8 = root_hash(tree, 4), root_hash(tree, 8)
    verify_consistency(4, 5, r4, r8, consistency_proof(tree, 4, 8))
    with pytest.raises(ProofInvalid):
        verify_consistency(4, 5, r4, root_hash(tree, 5), consistency_proof(tree, 4, 8))
    verify_inclusion(tree.leaf(0), 0, 3, inclusion_proof(tree, 0, 4), root_hash(tree, 4))


# --- properties over random trees --------------------------------------------------------------

# Distinct leaves (an index prefix), so a proof for one leaf is never also one for another.
distinct_leaves = st.lists(st.binary(max_size=6), min_size=1, max_size=70).map(
    lambda items: [i.to_bytes(2, "big") + item for i, item in enumerate(items)]
)


@given(leaves=distinct_leaves, data=st.data())
def test_inclusion_proofs_verify_and_resist_tampering(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = tree_of(leaves)
    size = data.draw(st.integers(1, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    root = root_hash(tree, size)
    proof = inclusion_proof(tree, index, size)
    leaf = leaf_hash(leaves[index])
    assert root == naive_mth(leaves[:size])
    verify_inclusion(leaf, index, size, proof, root)

    # Flip one bit anywhere in the leaf hash, the root or a proof hash.
    parts = [leaf, root, *proof]
    target = data.draw(st.integers(0, len(parts) - 1), label="target")
    position = data.draw(st.integers(0, 31), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    mutated = bytearray(parts[target])
    mutated[position] ^= 1 << bit
    parts[target] = bytes(mutated)
    with pytest.raises(ProofInvalid):
        verify_inclusion(parts[0], index, size, parts[2:], parts[1])

    wrong_index = data.draw(st.integers(0, 2 * size).filter(lambda i: i != index), label="wrong")
    with pytest.raises(ProofInvalid):
        verify_inclusion(leaf, wrong_index, size, proof, root)

    # Another size, with that size's own root (see test_a_root_binds_the_size_...).
    wrong_size = data.draw(st.integers(1, len(leaves)).filter(lambda n: n != size))
    wrong_root = naive_mth(leaves[:wrong_size])
    with pytest.raises(ProofInvalid):
        verify_inclusion(leaf, index, wrong_size, proof, wrong_root)


@given(leaves=distinct_leaves, data=st.data())
def test_consistency_proofs_verify_and_resist_tampering(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = tree_of(leaves)
    new = data.draw(st.integers(1, len(leaves)), label="new")
    old = data.draw(st.integers(1, new), label="old")
    old_root, new_root = root_hash(tree, old), root_hash(tree, new)
    proof = consistency_proof(tree, old, new)
    verify_consistency(old, new, old_root, new_root, proof)
    if old == new:
        assert proof == []
        return

    parts = [old_root, new_root, *proof]
    target = data.draw(st.integers(0, len(parts) - 1), label="target")
    position = data.draw(st.integers(0, 31), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    mutated = bytearray(parts[target])
    mutated[position] ^= 1 << bit
    parts[target] = bytes(mutated)
    with pytest.raises(ProofInvalid):
        verify_consistency(old, new, parts[0], parts[1], parts[2:])

    # Other sizes, each with its own root.
    sizes = st.tuples(st.integers(0, len(leaves)), st.integers(0, len(leaves)))
    old2, new2 = data.draw(sizes.filter(lambda s: s != (old, new)), label="wrong sizes")
    with pytest.raises(ProofInvalid):
        verify_consistency(old2, new2, naive_mth(leaves[:old2]), naive_mth(leaves[:new2]), proof)

    with pytest.raises(ProofInvalid):
        verify_consistency(old, new, old_root, new_root, proof[:-1])
    with pytest.raises(ProofInvalid):
        verify_consistency(old, new, old_root, new_root, [*proof, proof[0]])


@given(leaves=st.lists(st.binary(max_size=4), min_size=1, max_size=90), data=st.data())
def test_subtree_hashes_match_the_definition(leaves: list[bytes], data: st.DataObject) -> None:
    """Any range, aligned or not, duplicates allowed."""
    tree = tree_of(leaves)
    start = data.draw(st.integers(0, len(leaves) - 1), label="start")
    end = data.draw(st.integers(start + 1, len(leaves)), label="end")
    assert tree.subtree_hash(start, end) == naive_mth(leaves[start:end])
