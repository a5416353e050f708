"""Witnesses for the hub's log: the root-signed policy, and collecting cosignatures (spec §10.7).

After the hub signs a new checkpoint, a supervised background task sends add-checkpoint (with a
consistency proof from the size each witness cosigned last) to every witness of the policy and
keeps the newest checkpoint that gathered a quorum of cosignatures, as one note, for
``GET /v1/log/cosigned``. Accepting envelopes never waits for any of this.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp
import structlog
from aiohttp import web

from livcr_exchange.audit.checkpoint import open_checkpoint
from livcr_exchange.audit.cosignature import (
    WitnessKey,
    split_note,
    valid_cosignature_lines,
    verify_cosignature_line,
)
from livcr_exchange.audit.leaves import DirectoryChange
from livcr_exchange.audit.witness import (
    AddCheckpoint,
    merge_signatures,
    parse_cosignature_lines,
    parse_size,
)
from livcr_exchange.errors import CosignatureInvalid, LivcrError
from livcr_exchange.hashing import labelled_hash
from livcr_exchange.keys import IdentityKey
from livcr_exchange.witness_policy import WITNESS_POLICY_TYPE, WitnessPolicy

from .admission import body_of
from .config import HubConfig
from .operations import STATEMENT_HASH_LABEL, pending_leaf
from .store.base import HubStore, WriteBatch

log = structlog.get_logger("livcr.hub.witnessing")
WITNESS_URLS_NAME = "witness-urls.json"
POLICY_KIND = "witness_policy"  # the statements table's kind for a signed witness policy
ASK_TIMEOUT_SECONDS = 10.0
POLICY_REFRESH_SECONDS = 10.0  # how stale the collector's view of the policy may be


async def current_policy(store: HubStore, config: HubConfig) -> tuple[WitnessPolicy, bytes] | None:
    """The stored policy with the highest sequence, verified against the root key; None if none.

    Raises:
        LivcrError: a stored policy does not verify (the store was altered).
    """
    return policy_from_statements(await store.statements(), config)


def policy_from_statements(
    statements: Iterable[tuple[str, str, bytes]], config: HubConfig
) -> tuple[WitnessPolicy, bytes] | None:
    """The policy with the highest sequence among stored statements (see ``current_policy``).

    Raises:
        LivcrError: a stored policy does not verify against the root key.
    """
    best: tuple[WitnessPolicy, bytes] | None = None
    for kind, _, signed in statements:
        if kind == POLICY_KIND:
            policy = WitnessPolicy.open(signed, config.root_key, config.hub.cell_id)
            if best is None or policy.sequence > best[0].sequence:
                best = policy, signed
    return best


async def publish_policy(
    store: HubStore, config: HubConfig, root: IdentityKey, policy: WitnessPolicy, now: int
) -> bytes:
    """Sign ``policy`` with the root key, store it and log it as a directory change."""
    if root.public != config.root_key:
        raise ValueError("this root key is not the one the hub's config names")
    signed = policy.sign(root)
    leaf = DirectoryChange(
        now, WITNESS_POLICY_TYPE, config.hub.cell_id, labelled_hash(STATEMENT_HASH_LABEL, signed)
    )
    batch = WriteBatch(statements=[(POLICY_KIND, config.hub.cell_id, signed)])
    batch.leaves.append(pending_leaf(leaf))
    await store.commit(batch)
    return signed


def read_witness_urls(config: HubConfig) -> dict[str, str]:
    """Where each witness (by name) takes add-checkpoint; {} when none is configured.

    Raises:
        ValueError: the file is not a JSON object of strings.
    """
    path = config.path(WITNESS_URLS_NAME)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError(f"{path}: not a JSON object of witness name to URL")
    return dict(data)


def write_witness_urls(config: HubConfig, urls: Mapping[str, str]) -> None:
    path = config.path(WITNESS_URLS_NAME)
    staging = Path(f"{path}.new")
    staging.write_text(json.dumps(dict(sorted(urls.items())), indent=1) + "\n", encoding="utf-8")
    staging.replace(path)


class CheckpointSource(Protocol):
    """What the collector needs from a log: signed checkpoints and consistency proofs."""

    def checkpoint_note(self, size: int) -> bytes: ...

    def consistency(self, old_size: int, new_size: int) -> list[bytes]: ...


# Sizes whose cosignature lines are kept: gateways cosign the size they saw, which may trail
# the hub's newest by a few group commits.
KEPT_SIZES = 16


@dataclass
class CosignatureCollector:
    """Asks witnesses to cosign; remembers what each cosigned and the newest cosigned note."""

    source: CheckpointSource
    session: aiohttp.ClientSession | None = None  # set while the app runs
    witness_sizes: dict[str, int] = field(default_factory=dict)  # name -> last size cosigned
    lines: dict[int, dict[str, bytes]] = field(default_factory=dict)  # size -> name -> line(s)
    latest: bytes | None = None  # the newest note with a quorum of cosignatures
    latest_size: int = -1
    policy: WitnessPolicy | None = None  # the policy in force, as last read
    policy_read_at: float | None = None  # time.monotonic() of that read

    async def collect(self, size: int, witnesses: Mapping[WitnessKey, str], quorum: int) -> int:
        """Ask every witness (key -> URL) to cosign the checkpoint of ``size``; return how many
        did validly. The note is kept (``latest``) when at least ``quorum`` did (and one at
        least). A line that does not verify as its witness's is dropped, never served: a
        receiver refuses a note with a bad line of a known witness (spec §10.6)."""
        note = self.source.checkpoint_note(size)
        keys = list(witnesses)
        answers = await asyncio.gather(
            *(self._ask(key.name, witnesses[key], note, size) for key in keys)
        )
        body = split_note(note)[0]
        counted = 0
        for key, answer in zip(keys, answers, strict=True):
            valid = [line for line in answer if _verifies(body, line, key)]
            if valid:
                counted += 1
                self.add(size, {key.name: b"".join(valid)}, quorum)
        return counted

    def add(self, size: int, lines: Mapping[str, bytes], quorum: int) -> None:
        """Keep verified cosignature lines (by witness name) for ``size``; promote the note of
        ``size`` to ``latest`` once ``quorum`` witnesses (and one at least) cosigned it."""
        kept = self.lines.setdefault(size, {})
        kept.update(lines)
        while len(self.lines) > KEPT_SIZES:
            del self.lines[min(self.lines)]
        if size in self.lines and len(kept) >= max(quorum, 1) and size >= self.latest_size:
            note = self.source.checkpoint_note(size)
            self.latest = merge_signatures(note, list(kept.values()))
            self.latest_size = size

    async def _ask(self, name: str, url: str, note: bytes, size: int) -> list[bytes]:
        """One witness: add-checkpoint, following a 409's size once. [] when it refuses."""
        for _ in range(2):
            old = min(self.witness_sizes.get(name, 0), size)
            proof = self.source.consistency(old, size) if 0 < old < size else []
            request = AddCheckpoint(old, tuple(proof), note).encode()
            try:
                status, body = await self._post(url, request)
                if status == 200:
                    self.witness_sizes[name] = size
                    return parse_cosignature_lines(body)
                if status != 409:
                    log.warning("witness refused", witness=name, status=status, size=size)
                    return []
                known = parse_size(body)
            except (aiohttp.ClientError, TimeoutError, LivcrError) as exc:
                log.warning("witness unreachable", witness=name, error=str(exc))
                return []
            if known > size:
                # The witness cosigned a larger tree than this process has: another process
                # on the same store is ahead (the next round catches up), or the log was
                # rolled back, and then no witness will cosign it again.
                log.warning("witness holds a larger tree", witness=name, size=known, own=size)
                return []
            self.witness_sizes[name] = known
        return []

    async def _post(self, url: str, body: bytes) -> tuple[int, bytes]:
        if self.session is None:
            raise aiohttp.ClientError("the collector is not running")
        timeout = aiohttp.ClientTimeout(total=ASK_TIMEOUT_SECONDS)
        async with self.session.post(
            f"{url.rstrip('/')}/add-checkpoint", data=body, timeout=timeout
        ) as answer:
            return answer.status, await answer.read()


COLLECTOR = web.AppKey("witness_collector", CosignatureCollector)


async def cosigned(request: web.Request) -> web.Response:
    """GET /v1/log/cosigned: the newest checkpoint with a quorum of witness cosignatures."""
    note = request.app[COLLECTOR].latest
    if note is None:
        raise web.HTTPNotFound(text="no cosigned checkpoint yet\n")
    return web.Response(body=note, content_type="text/plain", charset="utf-8")


async def collect_round(
    collector: CosignatureCollector, store: HubStore, config: HubConfig, catch_up: CatchUp
) -> None:
    """Ask the witnesses with a URL to cosign the newest checkpoint if it is newer than the
    last cosigned one. The policy is read again at most every POLICY_REFRESH_SECONDS; without
    such witnesses the round costs the store nothing."""
    now = time.monotonic()
    if collector.policy_read_at is None or now - collector.policy_read_at >= POLICY_REFRESH_SECONDS:
        found = await current_policy(store, config)
        collector.policy = None if found is None else found[0]
        collector.policy_read_at = now
    policy = collector.policy
    urls = read_witness_urls(config) if policy is not None and policy.witnesses else {}
    wanted = {w: urls[w.name] for w in policy.witnesses if w.name in urls} if policy else {}
    if policy is None or not wanted:
        return
    size = await catch_up()
    if size > collector.latest_size:
        await collector.collect(size, wanted, policy.quorum)


def _verifies(body: bytes, line: bytes, witness: WitnessKey) -> bool:
    try:
        verify_cosignature_line(body, line, witness)
    except LivcrError as exc:
        log.warning("witness answered a line that is not its cosignature", witness=witness.name)
        log.debug("bad cosignature line", reason=str(exc))
        return False
    return True


class CatchUp(Protocol):
    async def __call__(self) -> int: ...


async def offer_cosignature(request: web.Request) -> web.Response:
    """POST /v1/log/cosignatures: a gateway that is a witness sends its cosignature on the
    hub's checkpoint it verified, as the checkpoint's note with its line added (spec §10.7)."""
    witnessing = request.app[WITNESSING]
    found = await current_policy(witnessing.store, witnessing.config)
    if found is None or not found[0].witnesses:
        raise CosignatureInvalid("the cell's witness policy names no witnesses")
    policy = found[0]
    note = body_of(request)  # read, under the hub's limits, before the signature was checked
    lines = valid_cosignature_lines(
        note,
        witnessing.config.origin,
        witnessing.log_public,
        policy.witnesses,
        now=witnessing.clock(),
    )
    if not lines:
        raise CosignatureInvalid("no valid cosignature of a witness of the policy")
    size = open_checkpoint(note, witnessing.config.origin, witnessing.log_public).size
    witnessing.collector.add(size, lines, policy.quorum)
    return web.json_response({"accepted": sorted(lines)}, status=202)


@dataclass(frozen=True)
class Witnessing:
    """What the witness routes need from the hub."""

    collector: CosignatureCollector
    store: HubStore
    config: HubConfig
    log_public: bytes
    clock: Callable[[], int]


WITNESSING = web.AppKey("witnessing", Witnessing)


def install_witnessing(
    app: web.Application,
    source: CheckpointSource,
    store: HubStore,
    config: HubConfig,
    catch_up: CatchUp,
    log_public: bytes,
    clock: Callable[[], int],
) -> None:
    """Serve GET /v1/log/cosigned and POST /v1/log/cosignatures; run the collector."""
    collector = CosignatureCollector(source)
    app[COLLECTOR] = collector
    app[WITNESSING] = Witnessing(collector, store, config, log_public, clock)
    app.add_routes(
        [
            web.get("/v1/log/cosigned", cosigned),
            web.post("/v1/log/cosignatures", offer_cosignature),
        ]
    )

    async def context(_: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            collector.session = session

            async def loop() -> None:
                while True:
                    await asyncio.sleep(config.hub.checkpoint_interval_seconds)
                    try:
                        await collect_round(collector, store, config, catch_up)
                    except Exception:  # a failed round is logged; the next one retries
                        log.exception("cosignature round failed")

            task = asyncio.create_task(loop(), name="hub-witnessing")
            yield
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(context)
