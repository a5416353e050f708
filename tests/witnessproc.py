"""A standalone witness in its own process, and a log that asks it to cosign, for tests."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hubproc import free_port

from livcr_exchange.audit.checkpoint import Checkpoint, sign_checkpoint
from livcr_exchange.audit.cosignature import WitnessKey
from livcr_exchange.audit.merkle import LeafHashList, consistency_proof, leaf_hash, root_hash
from livcr_exchange.audit.witness import AddCheckpoint, LogKey
from livcr_exchange.keys import IdentityKey
from witness.files import WitnessConfig, init_folder, read_config, write_config


@dataclass
class SigningLog:
    """An in-memory log that signs checkpoints, and can fork at any size."""

    origin: str = "livcr-exchange/witness-test"
    key: IdentityKey = field(default_factory=lambda: IdentityKey.from_seed(os.urandom(32)))
    tree: LeafHashList = field(default_factory=LeafHashList)

    @property
    def log_key(self) -> LogKey:
        return LogKey(self.origin, self.origin, self.key.public.raw)

    def grow(self, count: int, tag: bytes = b"") -> None:
        for _ in range(count):
            self.tree.append(leaf_hash(tag + os.urandom(16)))

    def fork(self, at: int, count: int) -> SigningLog:
        """Another log under the same key: the first ``at`` leaves, then ``count`` others."""
        other = SigningLog(
            self.origin, self.key, LeafHashList(self.tree.leaf(i) for i in range(at))
        )
        other.grow(count, b"fork")
        return other

    def note(self, size: int) -> bytes:
        checkpoint = Checkpoint(self.origin, size, root_hash(self.tree, size))
        return sign_checkpoint(checkpoint, self.origin, self.key)

    # The hub collector's CheckpointSource protocol.
    def checkpoint_note(self, size: int) -> bytes:
        return self.note(size)

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_proof(self.tree, old_size, new_size)

    @property
    def size(self) -> int:
        return len(self.tree)

    def request(self, old: int, new: int) -> bytes:
        proof = consistency_proof(self.tree, old, new) if 0 < old < new else []
        return AddCheckpoint(old, tuple(proof), self.note(new)).encode()

    @property
    def origin_hash(self) -> str:
        return hashlib.sha256(self.origin.encode()).hexdigest()


@dataclass
class WitnessProcess:
    """`livcr witness serve` as a child process on a free loopback port."""

    folder: Path
    key: WitnessKey
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, folder: Path, name: str, logs: list[LogKey]) -> WitnessProcess:
        key = init_folder(folder, name, os.urandom(32))
        config = read_config(folder)
        write_config(folder, WitnessConfig(config.name, {log.origin: log for log in logs}))
        return cls(folder, WitnessKey(name, key.public.raw))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        log = (self.folder / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "livcr_cli", "witness", "serve"),
                *("--dir", str(self.folder), "--port", str(self.port)),
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"witness exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("witness did not start listening")

    def kill(self) -> None:
        """SIGKILL: what survives is what the witness committed."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
