"""Reading vector folders from disk for ``livcr vectors verify`` and the test suite."""

from __future__ import annotations

from pathlib import Path

from ..conformance import Vector, decode_vector_file, vector_file_names


def load_vector_dir(vector_dir: Path) -> list[Vector]:
    """Every vector in the folder's top-level files, in file then listed order."""
    names = vector_file_names(p.name for p in vector_dir.iterdir() if p.is_file())
    vectors: list[Vector] = []
    for name in names:
        vectors.extend(decode_vector_file((vector_dir / name).read_bytes()))
    return vectors
