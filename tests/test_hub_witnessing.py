"""The hub asks the policy's witnesses to cosign and serves the cosigned checkpoint."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from unittest import mock

import aiohttp
from click.testing import CliRunner
from gateway_harness import _cheap_lock as cheap_lock
from hubproc import ROOT_PASSPHRASE, HubProcess
from witnessproc import WitnessProcess

from hub.witnessing import read_witness_urls
from livcr_cli import main
from livcr_exchange.audit.cosignature import verify_cosigned_checkpoint
from livcr_exchange.audit.witness import LogKey
from livcr_exchange.keys import IdentityPublicKey
from livcr_exchange.roles import Role
from livcr_exchange.witness_policy import WitnessPolicy

ENV = {"LIVCR_ROOT_PASSPHRASE": ROOT_PASSPHRASE}


def hub_cli(hub: HubProcess, *args: str) -> str:
    result = CliRunner().invoke(
        main, ["hub", *args[:2], "--config", str(hub.config_path), *args[2:]], env=ENV
    )
    assert result.exit_code == 0, result.output
    return result.output


async def wait_for_cosigned(url: str, size: int, timeout: float = 20.0) -> bytes:
    """The hub's cosigned note once it covers ``size`` leaves."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            async with session.get(f"{url}/v1/log/cosigned") as answer:
                if answer.status == 200:
                    note = await answer.read()
                    if int(note.split(b"\n")[1]) >= size:
                        return note
            await asyncio.sleep(0.1)
    raise TimeoutError("no cosigned checkpoint of that size")


async def checkpoint_size(hub: HubProcess) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session:
        client = hub.client("coord", session)
        note = await client.checkpoint()
        return int(note.split(b"\n")[1]), await client.directory()


def test_hub_collects_cosignatures_of_the_policy_witnesses(tmp_path: Path) -> None:
    with mock.patch("hub.keyfiles.lock", cheap_lock):  # the root key file at the test cost
        hub = HubProcess.create(tmp_path / "hub", {"coord": Role.COORDINATOR, "dpo": Role.DPO})
    config = hub.config
    log_key = IdentityPublicKey.from_text(hub_cli(hub, "keys", "log").strip())
    origin = config.origin
    witnesses = [
        WitnessProcess.create(
            tmp_path / name, f"{name}.example/witness", [LogKey(origin, origin, log_key.raw)]
        )
        for name in ("dpo", "supervisor")
    ]
    for witness in witnesses:
        witness.start()
    try:
        hub_cli(hub, "witness", "add", witnesses[0].key.vkey(), "--url", witnesses[0].url)
        out = hub_cli(
            hub,
            "witness",
            "add",
            witnesses[1].key.vkey(),
            "--url",
            witnesses[1].url,
            "--quorum",
            "2",
        )
        assert "witness policy 2: quorum 2 of 2" in out
        assert set(read_witness_urls(config)) == {w.key.name for w in witnesses}
        hub.start()
        size, listing = asyncio.run(checkpoint_size(hub))
        assert isinstance(listing["witness_policy"], str)
        policy = WitnessPolicy.open(
            base64.b64decode(listing["witness_policy"]), config.root_key, config.hub.cell_id
        )
        assert (policy.sequence, policy.quorum) == (2, 2)

        note = asyncio.run(wait_for_cosigned(hub.url, size))
        coverage = verify_cosigned_checkpoint(
            note, origin, log_key.raw, [w.key for w in witnesses], 2, now=int(time.time())
        )
        assert sorted(c.witness for c in coverage.valid) == sorted(w.key.name for w in witnesses)

        # A witness that goes away never holds the hub up; a later restart of the hub asks the
        # witnesses again from what they answer (409 with their size, then a proof).
        witnesses[1].kill()
        hub.stop()
        hub_cli(hub, "witness", "quorum", "1")
        hub.start()
        size, _ = asyncio.run(checkpoint_size(hub))
        note = asyncio.run(wait_for_cosigned(hub.url, size))
        coverage = verify_cosigned_checkpoint(
            note, origin, log_key.raw, [w.key for w in witnesses], 1, now=int(time.time())
        )
        assert [c.witness for c in coverage.valid] == [witnesses[0].key.name]
    finally:
        hub.stop()
        for witness in witnesses:
            witness.stop()
