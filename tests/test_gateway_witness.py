"""Gateways as witnesses: they cosign the checkpoints they verified, the hub gathers a quorum,
and a sent message's receipt becomes witnessed (spec §10.7)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
from click.testing import CliRunner
from gateway_harness import PASSPHRASE, GatewayCell
from hubproc import ROOT_PASSPHRASE

from gateway.core import Gateway, Receipt
from livcr_cli import main
from livcr_exchange.audit.cosignature import WitnessKey, verify_cosigned_checkpoint
from livcr_exchange.purpose_examples import example_body

WITNESSES = ("caw", "clb")


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), env={"LIVCR_ROOT_PASSPHRASE": ROOT_PASSPHRASE})
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_gateway_witnesses_make_a_receipt_witnessed(tmp_path: Path) -> None:
    cell = GatewayCell.create(tmp_path, start=False)
    vkeys = [
        cli("gateway", "witness-key", "--config", str(cell.configs[p]), "--name", f"{p}.example/w")
        for p in WITNESSES
    ]
    hub_config = str(cell.hub.config_path)
    for vkey in vkeys:
        cli("hub", "witness", "add", "--config", hub_config, vkey)
    assert cli("hub", "witness", "quorum", "--config", hub_config, "2").endswith("quorum 2 of 2")
    cell.hub.start()
    try:
        asyncio.run(scenario(cell, [WitnessKey.from_vkey(v) for v in vkeys]))
    finally:
        cell.hub.stop()


async def scenario(cell: GatewayCell, witnesses: list[WitnessKey]) -> None:
    async with (
        Gateway.open(cell.config("caw"), passphrase=PASSPHRASE) as caw,
        Gateway.open(cell.config("clb"), passphrase=PASSPHRASE, background=False) as clb,
    ):
        receipt = await caw.send(
            "case-kedv7k6frbzwhhcbumuwrqre7m",
            "aanmelding",
            to=["coord"],
            body=example_body("aanmelding"),
        )
        assert isinstance(receipt, Receipt)
        assert receipt.leaf_index is not None
        assert not caw.is_witnessed(receipt)
        # Each round both gateways cosign what they verified; the hub keeps a note once two
        # cosigned one size; the round after, the gateways see it. A few rounds at most.
        for _ in range(6):
            await caw.maintain()
            await clb.maintain()
            if caw.is_witnessed(receipt):
                break
        assert caw.is_witnessed(receipt)
        assert caw.halted is None
        assert clb.halted is None
        status = await caw.status()
        assert status["witness_quorum"] == 2
        assert status["witnessed_size"] > receipt.leaf_index
        [record] = await caw.dossier(case_ref="case-kedv7k6frbzwhhcbumuwrqre7m")
        assert record["witnessed"] is True

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{cell.hub.url}/v1/log/cosigned") as answer,
    ):
        note = await answer.read()
    origin = cell.config("caw").log_origin
    log_key = cell.config("caw").hub_log_key.raw
    coverage = verify_cosigned_checkpoint(note, origin, log_key, witnesses, 2, now=int(time.time()))
    assert sorted(c.witness for c in coverage.valid) == sorted(w.name for w in witnesses)
