"""Envelope seal and open rates next to the raw cost of the primitives they are built from.

Usage: python bench/bench_envelope.py [--quick]

For 1, 3 and 10 recipients, a 4 KiB body and both suites, it times ``seal`` and
``open_envelope`` and, in the same run, the primitives they call: Ed25519 sign and verify
(PyNaCl), XChaCha20-Poly1305 of 4 KiB (PyNaCl), BLAKE2b-256 of 4 KiB and of 64 bytes, and HPKE
seal/open of a 32-byte content key for each suite (pyca/cryptography). Each seal and open is
set against a "primitive floor", the sum of the primitive calls one message needs:

    seal(n) = n x HPKE seal + Ed25519 sign(L) + AEAD encrypt(4 KiB, AD = header)
              + BLAKE2b(4 KiB body hash) + 3 x BLAKE2b(64 B: core hash, commitment, payload key)
    open    = HPKE open + Ed25519 verify(L) + AEAD decrypt(4 KiB, AD = header)
              + BLAKE2b(4 KiB body hash) + 3 x BLAKE2b(64 B)

where L is the length of the signed message (label, header length, header, body hash), and the
sign, verify and AEAD terms are timed at that configuration's real header and message sizes.
Everything else (encoding and parsing the header, key ids, building pyca key objects from
stored seeds, directory look-ups) is overhead the ratio measured/floor shows.

Timing: after a warm-up of busy signing (the virtual CPUs here run markedly slower for the
first fraction of a second of load), ``time.perf_counter_ns`` around batches, each sized to a
target duration. Every measurement is taken once per round and the rounds run round-robin over
all measurements (garbage collector paused), so slow drift on the shared, noisy cores hits a
floor and its envelope alike. The tables quote medians over rounds (µs/op, ops/s, and the ratio,
computed round by round) and the interquartile range as a share of the median.
Keys and bodies are deterministic (libsodium's randombytes_deterministic on a labelled seed);
only the per-message randomness of ``seal`` comes from ``os.urandom``, as in the services.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version

import nacl.bindings
import nacl.encoding
import nacl.hash
import nacl.signing
import nacl.utils

from livcr_exchange.constants import LABEL_ENVELOPE_SIGNATURE
from livcr_exchange.directory import Directory
from livcr_exchange.envelope import MessageSpec, open_envelope, seal
from livcr_exchange.hashing import labelled_hash
from livcr_exchange.keys import IdentityKey, PrekeySecret, Suite
from livcr_exchange.roles import Role
from livcr_exchange.statements import DirectoryEntry

BODY_BYTES = 4 * 1024
CONTENT_KEY_BYTES = 32
INFO_BYTES = 64  # about the size of a wrap info (label, core hash, recipient id)
SMALL_HASH_BYTES = 64
SMALL_HASHES = 3  # per message: header core hash, key commitment, payload key
RECIPIENT_COUNTS = (1, 3, 10)
NOW = 1_893_456_000  # 2030-01-01T00:00:00Z
DAY = 86_400
CELL = "cell-bench"
KBO = "0207437468"  # a syntactically valid enterprise number
PURPOSE = "aanmelding"


# --- deterministic inputs ---------------------------------------------------------------------


def det(label: str, size: int) -> bytes:
    """Deterministic bytes for ``label``: randombytes_deterministic on a hashed label."""
    seed = labelled_hash(b"livcr-exchange/v1 bench\x00", label.encode())
    value: bytes = nacl.utils.randombytes_deterministic(size, seed)
    return value


def identity_key(label: str) -> IdentityKey:
    return IdentityKey.from_seed(det(f"identity {label}", 32))


def prekey_secret(label: str, suite: Suite) -> PrekeySecret:
    return PrekeySecret(suite, det(f"prekey {label} {suite.value}", suite.secret_seed_bytes))


# --- timing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    rounds: int
    target_ns: int  # wall time of one batch
    warm_up_ns: int  # busy time before calibrating: the virtual CPUs run slower when idle


def warm_up(duration_ns: int) -> None:
    """Keep a core busy with signing so that clock ramp-up does not land in the first rounds."""
    key = nacl.signing.SigningKey(det("warm-up", 32))
    end = time.perf_counter_ns() + duration_ns
    while time.perf_counter_ns() < end:
        key.sign(b"warm-up")


@dataclass(frozen=True)
class Timing:
    """Per-operation times in ns, one per round."""

    rounds_ns: tuple[float, ...]

    @property
    def median_ns(self) -> float:
        return statistics.median(self.rounds_ns)

    @property
    def us(self) -> float:
        return self.median_ns / 1000

    @property
    def ops(self) -> float:
        return 1e9 / self.median_ns

    @property
    def iqr_pct(self) -> float:
        if len(self.rounds_ns) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.rounds_ns, n=4)
        return 100 * (q3 - q1) / self.median_ns


def _batch(fn: Callable[[], object], count: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(count):
        fn()
    return time.perf_counter_ns() - start


class Bench:
    """Measurements registered by name, then timed together, one batch of each per round."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self._jobs: dict[str, tuple[Callable[[], object], int]] = {}

    def add(self, name: str, fn: Callable[[], object]) -> str:
        """Register ``fn`` (once per name) with a batch size calibrated to the target time."""
        if name not in self._jobs:
            fn()  # warm up
            count, elapsed = 1, _batch(fn, 1)
            while elapsed < self.mode.target_ns // 10:
                count *= 4
                elapsed = _batch(fn, count)
            self._jobs[name] = (fn, max(1, round(count * self.mode.target_ns / max(elapsed, 1))))
        return name

    def run(self) -> dict[str, Timing]:
        samples: dict[str, list[float]] = {name: [] for name in self._jobs}
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for _ in range(self.mode.rounds):
                for name, (fn, count) in self._jobs.items():
                    samples[name].append(_batch(fn, count) / count)
        finally:
            if gc_was_enabled:
                gc.enable()
        return {name: Timing(tuple(values)) for name, values in samples.items()}


# --- primitives -------------------------------------------------------------------------------


def blake2b(data: bytes) -> bytes:
    digest: bytes = nacl.hash.blake2b(data, digest_size=32, encoder=nacl.encoding.RawEncoder)
    return digest


def aead_encrypt(key: bytes, nonce: bytes, plain: bytes, ad: bytes) -> bytes:
    sealed: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, ad, nonce, key)
    return sealed


def aead_decrypt(key: bytes, nonce: bytes, sealed: bytes, ad: bytes) -> bytes:
    plain: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, ad, nonce, key)
    return plain


class Primitives:
    """Registers primitive measurements, at fixed sizes and at a configuration's real sizes."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.signing = nacl.signing.SigningKey(det("primitive signer", 32))
        self.verify_key = self.signing.verify_key
        self.aead_key = det("aead key", 32)
        self.nonce = det("aead nonce", 24)
        self.body = det("primitive body", BODY_BYTES)

    def sign(self, length: int) -> str:
        message = det(f"sign message {length}", length)
        return self.bench.add(f"sign {length}", lambda: self.signing.sign(message))

    def verify(self, length: int) -> str:
        signed = self.signing.sign(det(f"sign message {length}", length))
        return self.bench.add(f"verify {length}", lambda: self.verify_key.verify(signed))

    def aead_encrypt(self, ad_length: int) -> str:
        ad = det(f"ad {ad_length}", ad_length)
        return self.bench.add(
            f"aead encrypt {ad_length}",
            lambda: aead_encrypt(self.aead_key, self.nonce, self.body, ad),
        )

    def aead_decrypt(self, ad_length: int) -> str:
        ad = det(f"ad {ad_length}", ad_length)
        sealed = aead_encrypt(self.aead_key, self.nonce, self.body, ad)
        return self.bench.add(
            f"aead decrypt {ad_length}",
            lambda: aead_decrypt(self.aead_key, self.nonce, sealed, ad),
        )

    def blake2b(self, length: int) -> str:
        data = det(f"hash input {length}", length)
        return self.bench.add(f"blake2b {length}", lambda: blake2b(data))

    def hpke_seal(self, suite: Suite) -> str:
        public = prekey_secret("primitive", suite).public.hpke_public()
        key, info = det("content key", CONTENT_KEY_BYTES), det("info", INFO_BYTES)
        return self.bench.add(
            f"hpke seal {suite.name}", lambda: suite.hpke.encrypt(key, public, info=info)
        )

    def hpke_open(self, suite: Suite) -> str:
        secret = prekey_secret("primitive", suite)
        private = secret.hpke_private()
        key, info = det("content key", CONTENT_KEY_BYTES), det("info", INFO_BYTES)
        stanza = suite.hpke.encrypt(key, secret.public.hpke_public(), info=info)
        return self.bench.add(
            f"hpke open {suite.name}", lambda: suite.hpke.decrypt(stanza, private, info=info)
        )

    def key_objects(self, suite: Suite) -> tuple[str, str]:
        """Overhead, not floor: pyca key objects built from stored bytes on every wrap/unwrap."""
        secret = prekey_secret("primitive", suite)
        public = secret.public
        return (
            self.bench.add(f"public key object {suite.name}", public.hpke_public),
            self.bench.add(f"private key object {suite.name}", secret.hpke_private),
        )


# --- envelopes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    suite: Suite
    recipients: int
    sender: IdentityKey
    spec: MessageSpec
    directory: Directory
    prekeys: dict[bytes, PrekeySecret]
    body: bytes
    envelope: bytes

    @property
    def header_bytes(self) -> int:
        return int.from_bytes(self.envelope[:4], "big")

    @property
    def signed_bytes(self) -> int:
        """Length of the message the envelope signature covers (spec §6.5)."""
        return len(LABEL_ENVELOPE_SIGNATURE) + 4 + self.header_bytes + 32

    def seal_once(self) -> bytes:
        return seal(self.sender, self.spec, self.body, now=NOW, ttl=DAY, random=os.urandom)

    def open_once(self) -> bytes:
        opened = open_envelope(
            self.envelope,
            recipient_id="r00",
            prekeys=self.prekeys,
            directory=self.directory,
            now=NOW,
            judged_at=NOW,
        )
        return opened.body


def scenario(suite: Suite, count: int) -> Scenario:
    sender = identity_key("sender")
    entry = DirectoryEntry(
        CELL,
        "sender",
        KBO,
        Role.DEELNEMER,
        sender.public,
        frozenset({PURPOSE}),
        NOW - 365 * DAY,
        NOW + 365 * DAY,
    )
    directory = Directory(CELL, identity_key("root").public, (entry,))
    secrets = {f"r{i:02d}": prekey_secret(f"r{i:02d}", suite) for i in range(count)}
    spec = MessageSpec(
        cell_id=CELL,
        sender_id="sender",
        purpose=PURPOSE,
        case_ref="case-vjwcwgpfwcgoskikyova64eg3m",
        recipients={rid: secret.public for rid, secret in secrets.items()},
        suite=suite,
    )
    body = det("body", BODY_BYTES)
    envelope = seal(sender, spec, body, now=NOW, ttl=DAY, random=os.urandom)
    first = secrets["r00"]
    made = Scenario(suite, count, sender, spec, directory, {first.key_id: first}, body, envelope)
    if made.open_once() != body:
        raise RuntimeError("round trip failed")
    return made


# --- plan and report --------------------------------------------------------------------------

Floor = dict[str, float]  # measurement name -> how many of it one operation needs


@dataclass(frozen=True)
class Planned:
    suite: Suite
    recipients: int
    operation: str
    name: str
    floor: Floor
    header_bytes: int


@dataclass(frozen=True)
class Row:
    planned: Planned
    timing: Timing
    floor: Timing  # the floor's sum, round by round
    ratio: float  # median over rounds of measured / floor


def plan_envelopes(bench: Bench, primitives: Primitives) -> list[Planned]:
    planned = []
    shared = {
        primitives.blake2b(BODY_BYTES): 1.0,
        primitives.blake2b(SMALL_HASH_BYTES): float(SMALL_HASHES),
    }
    for suite in Suite:
        for count in RECIPIENT_COUNTS:
            case = scenario(suite, count)
            header, signed = case.header_bytes, case.signed_bytes
            seal_floor = {
                primitives.hpke_seal(suite): float(count),
                primitives.sign(signed): 1.0,
                primitives.aead_encrypt(header): 1.0,
                **shared,
            }
            open_floor = {
                primitives.hpke_open(suite): 1.0,
                primitives.verify(signed): 1.0,
                primitives.aead_decrypt(header): 1.0,
                **shared,
            }
            for operation, fn, floor in (
                ("seal", case.seal_once, seal_floor),
                ("open", case.open_once, open_floor),
            ):
                name = bench.add(f"{operation} {suite.name} {count}", fn)
                planned.append(Planned(suite, count, operation, name, floor, header))
    return planned


def rows_from(planned: list[Planned], timings: dict[str, Timing]) -> list[Row]:
    rows = []
    for item in planned:
        measured = timings[item.name].rounds_ns
        floor = tuple(
            sum(times * timings[name].rounds_ns[i] for name, times in item.floor.items())
            for i in range(len(measured))
        )
        ratio = statistics.median(m / f for m, f in zip(measured, floor, strict=True))
        rows.append(Row(item, timings[item.name], Timing(floor), ratio))
    return rows


def print_primitives(named: list[tuple[str, Timing]]) -> None:
    print(f"{'primitive':<46}{'µs/op':>10}{'ops/s':>12}{'IQR':>7}")
    for label, timing in named:
        print(f"{label:<46}{timing.us:>10.2f}{timing.ops:>12,.0f}{timing.iqr_pct:>6.1f}%")


def print_envelopes(rows: list[Row]) -> None:
    print(
        f"{'suite':<7}{'n':>3}  {'op':<5}{'header B':>9}{'µs/op':>10}{'ops/s':>10}"
        f"{'IQR':>7}{'floor µs':>10}{'ratio':>7}{'overhead µs':>13}"
    )
    for row in rows:
        item, timing = row.planned, row.timing
        print(
            f"{item.suite.name:<7}{item.recipients:>3}  {item.operation:<5}{item.header_bytes:>9}"
            f"{timing.us:>10.1f}{timing.ops:>10,.0f}{timing.iqr_pct:>6.1f}%"
            f"{row.floor.us:>10.1f}{row.ratio:>7.2f}{timing.us - row.floor.us:>13.1f}"
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few short rounds (a few seconds)")
    args = parser.parse_args(argv)
    quick = Mode(rounds=5, target_ns=2_000_000, warm_up_ns=1_000_000_000)
    mode = quick if args.quick else Mode(rounds=15, target_ns=15_000_000, warm_up_ns=2_000_000_000)
    started = time.perf_counter_ns()
    print(
        f"livcr_exchange envelope benchmark: {'quick' if args.quick else 'full'} mode, "
        f"{mode.rounds} rounds, batches of ~{mode.target_ns / 1e6:.0f} ms, medians over rounds"
    )
    print(
        f"Python {platform.python_version()}, PyNaCl {version('pynacl')}, "
        f"cryptography {version('cryptography')}, {os.cpu_count()} CPUs, body {BODY_BYTES} B"
    )
    warm_up(mode.warm_up_ns)
    bench = Bench(mode)
    primitives = Primitives(bench)
    labels = [
        ("Ed25519 sign, 64 B message", primitives.sign(64)),
        ("Ed25519 verify, 64 B message", primitives.verify(64)),
        ("XChaCha20-Poly1305 encrypt 4 KiB, no AD", primitives.aead_encrypt(0)),
        ("XChaCha20-Poly1305 decrypt 4 KiB, no AD", primitives.aead_decrypt(0)),
        ("BLAKE2b-256 of 4 KiB", primitives.blake2b(BODY_BYTES)),
        ("BLAKE2b-256 of 64 B", primitives.blake2b(SMALL_HASH_BYTES)),
    ]
    overhead = []
    for suite in Suite:
        labels.append((f"HPKE seal 32 B, {suite.name}", primitives.hpke_seal(suite)))
        labels.append((f"HPKE open 32 B, {suite.name}", primitives.hpke_open(suite)))
        public, private = primitives.key_objects(suite)
        overhead.append((f"{suite.name} public key object (per wrap)", public))
        overhead.append((f"{suite.name} private key object (per unwrap)", private))
    planned = plan_envelopes(bench, primitives)
    timings = bench.run()

    print("\nPrimitives (as called from Python)")
    print_primitives([(label, timings[name]) for label, name in labels])
    print("\nNot in the floor: pyca key objects rebuilt from stored bytes on each call")
    print_primitives([(label, timings[name]) for label, name in overhead])
    print(f"\nEnvelopes, {BODY_BYTES} B body (ratio = measured / primitive floor, per round)")
    print_envelopes(rows_from(planned, timings))
    print(
        "\nfloor(seal) = n x HPKE seal + sign(L) + AEAD enc(4 KiB, AD = header)"
        f" + BLAKE2b(4 KiB) + {SMALL_HASHES} x BLAKE2b(64 B)"
    )
    print(
        "floor(open) = HPKE open + verify(L) + AEAD dec(4 KiB, AD = header)"
        f" + BLAKE2b(4 KiB) + {SMALL_HASHES} x BLAKE2b(64 B)"
    )
    signed_extra = len(LABEL_ENVELOPE_SIGNATURE) + 4 + 32
    print(
        f"L = signed message = header + {signed_extra} B; sign, verify and AEAD are timed at "
        "each row's sizes"
    )
    print(f"total run time {(time.perf_counter_ns() - started) / 1e9:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
