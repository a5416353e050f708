"""The witness's HTTP interface (C2SP tlog-witness): add-checkpoint and the monitor checkpoint."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog
from aiohttp import web

from livcr_exchange.audit.checkpoint import Checkpoint
from livcr_exchange.audit.cosignature import cosign
from livcr_exchange.audit.witness import (
    SIZE_CONTENT_TYPE,
    LogKey,
    cosignature_response,
    encode_size,
    http_status,
    parse_add_checkpoint,
)
from livcr_exchange.errors import LivcrError, WitnessConflict
from livcr_exchange.keys import IdentityKey

from .store import WitnessStore

log = structlog.get_logger("livcr.witness")
MAX_BODY_BYTES = 1 << 20


@dataclass
class Witness:
    """One witness: a name, a key, the logs it follows and its durable state."""

    name: str
    key: IdentityKey
    logs: Mapping[str, LogKey]
    store: WitnessStore
    clock: Callable[[], float] = time.time

    def cosign(self, checkpoint: Checkpoint) -> list[bytes]:
        return [cosign(checkpoint.body(), self.name, self.key, int(self.clock()))]


WITNESS_KEY: web.AppKey[Witness] = web.AppKey("witness", Witness)


async def add_checkpoint(request: web.Request) -> web.Response:
    witness = request.app[WITNESS_KEY]
    body = await request.read()
    try:
        submitted = parse_add_checkpoint(body)
        # Synchronous on purpose: the check and the fsynced write are one step for this
        # process, so two requests can never interleave between them.
        lines = witness.store.add_checkpoint(submitted, witness.logs, witness.cosign)
    except WitnessConflict:
        last = witness.store.last(_origin_of(body))
        size = 0 if last is None else last[0].size
        log.warning("add-checkpoint conflict", last_size=size)
        return web.Response(status=409, body=encode_size(size), content_type=SIZE_CONTENT_TYPE)
    except LivcrError as exc:
        log.warning("add-checkpoint refused", code=exc.code, reason=str(exc))
        return web.Response(status=http_status(exc), text=f"{exc.code}: {exc}\n")
    return web.Response(body=cosignature_response(lines), content_type="text/plain")


def _origin_of(body: bytes) -> str:
    note = body.partition(b"\n\n")[2]
    return note.split(b"\n", 1)[0].decode("utf-8", "replace")


async def monitor_checkpoint(request: web.Request) -> web.Response:
    witness = request.app[WITNESS_KEY]
    wanted = request.match_info["origin_hash"]
    for origin in witness.logs:
        if hashlib.sha256(origin.encode("utf-8")).hexdigest() == wanted:
            last = witness.store.last(origin)
            if last is not None:
                return web.Response(body=last[1], content_type="text/plain")
    raise web.HTTPNotFound(text="no checkpoint cosigned for that log\n")


def create_app(witness: Witness) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[WITNESS_KEY] = witness
    app.add_routes(
        [
            web.post("/add-checkpoint", add_checkpoint),
            web.get("/{origin_hash:[0-9a-f]{64}}/checkpoint", monitor_checkpoint),
        ]
    )
    return app
