"""Reading vector folders from disk for ``livcr vectors verify`` and the test suite."""

from __future__ import annotations

from pathlib import Path

from ..conformance import Vector, decode_vector_file, vector_file_names
from ..external_vectors import cctv_ed25519_vectors, hpke_xwing_vectors, merkle_vectors

EXTERNAL = "external"
CCTV = Path("cctv-ed25519")
MERKLE = Path("transparency-dev-merkle")
HPKE_PQ = Path("hpke-pq") / "test-vectors-0x647a.json"


def load_vector_dir(vector_dir: Path) -> list[Vector]:
    """Every vector in the folder's top-level files, in file then listed order."""
    names = vector_file_names(p.name for p in vector_dir.iterdir() if p.is_file())
    vectors: list[Vector] = []
    for name in names:
        vectors.extend(decode_vector_file((vector_dir / name).read_bytes()))
    return vectors


def load_external_dir(external_dir: Path) -> list[Vector]:
    """The external suites (spec §14.2) present under ``external_dir``, each as vectors."""
    vectors: list[Vector] = []
    cctv = external_dir / CCTV
    if cctv.is_dir():
        vectors.extend(
            cctv_ed25519_vectors(
                (cctv / "ed25519vectors.json").read_bytes(), (cctv / "expected.json").read_bytes()
            )
        )
    merkle = external_dir / MERKLE
    if merkle.is_dir():
        files = {p.relative_to(merkle).as_posix(): p.read_bytes() for p in merkle.rglob("*.json")}
        vectors.extend(merkle_vectors(files))
    if (external_dir / HPKE_PQ).is_file():
        vectors.extend(hpke_xwing_vectors((external_dir / HPKE_PQ).read_bytes()))
    return vectors


def load_all_vectors(vector_dir: Path) -> list[Vector]:
    """The folder's own vectors, then those of its ``external/`` suites."""
    external = vector_dir / EXTERNAL
    extra = load_external_dir(external) if external.is_dir() else []
    return [*load_vector_dir(vector_dir), *extra]
