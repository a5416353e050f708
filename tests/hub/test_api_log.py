"""The transparency log through the hub's API: checkpoints, inclusion and consistency proofs,
leaves; and the operational endpoints /healthz and /metrics."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import hub_harness
import pytest
from conftest import StoreTarget
from hub_harness import (
    LOG_KEY,
    ORIGIN,
    Clock,
    HubHarness,
    make_config,
    refused,
    running_hub,
)

from hub.operator import verify_log
from hub.visibility import case_of, named_participants
from livcr_exchange.audit.checkpoint import Checkpoint, open_checkpoint
from livcr_exchange.audit.leaves import DirectoryChange, decode_leaf
from livcr_exchange.audit.merkle import (
    LeafHashList,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# The fixtures `clock` and `harness` (see hub_harness on why there is no conftest here).
clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture

CASE = "case-epcnktpgoz6rnprl6dczininxa"


async def activity(harness: HubHarness, case_ref: str = CASE) -> None:
    """A little of everything that appends leaves: a case, an envelope, a delivery receipt."""
    await harness.case_in(case_ref, "in_screening", ["caw"])
    coord = harness.client("coord")
    await coord.submit(harness.seal("coord", ["caw"], case_ref=case_ref))


async def public_checkpoint(harness: HubHarness) -> Checkpoint:
    async with harness.session.get(harness.url + "/v1/log/checkpoint") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        note = await response.read()
    return open_checkpoint(note, ORIGIN, LOG_KEY.public.raw)


async def recomputed_tree(harness: HubHarness) -> LeafHashList:
    """The tree rebuilt by an auditor (the coordinator reads every leaf) from the served leaves."""
    tree = LeafHashList()
    page = await harness.client("coord").call("GET", "/v1/log/leaves", query={"start": 0})
    for position, item in enumerate(page["leaves"]):
        assert item["index"] == position
        data = base64.b64decode(item["data"])
        decode_leaf(data)  # every leaf is a well-formed record
        assert leaf_hash(data) == base64.b64decode(item["hash"])
        tree.append(leaf_hash(data))
    return tree


async def test_checkpoint_is_signed_and_matches_the_served_leaves(harness: HubHarness) -> None:
    await activity(harness)
    checkpoint = await public_checkpoint(harness)
    tree = await recomputed_tree(harness)
    assert checkpoint.origin == ORIGIN
    assert checkpoint.size == len(tree) == await harness.store.tree_size()
    assert checkpoint.root == root_hash(tree, len(tree))
    # The signed client sees the same bytes: signatures are deterministic.
    assert await harness.client("caw").checkpoint() == await harness.client("clb").checkpoint()


async def test_every_leaf_has_an_inclusion_proof_against_the_checkpoint(
    harness: HubHarness,
) -> None:
    await activity(harness)
    checkpoint = await public_checkpoint(harness)
    tree = await recomputed_tree(harness)
    client = harness.client("caw")
    for index in range(checkpoint.size):
        proof = await client.inclusion(index, checkpoint.size)
        verify_inclusion(tree.leaf(index), index, checkpoint.size, proof, checkpoint.root)
    answer = await client.call("GET", "/v1/log/inclusion", query={"index": 0})
    assert answer["size"] == checkpoint.size  # size defaults to the current tree


async def test_consistency_between_checkpoints_verifies(harness: HubHarness) -> None:
    await activity(harness)
    old = await public_checkpoint(harness)
    await activity(harness, "case-emt4ixgny5r7pwon6h5ikfv7ae")
    new = await public_checkpoint(harness)
    assert new.size > old.size
    client = harness.client("caw")
    proof = await client.consistency(old.size, new.size)
    verify_consistency(old.size, new.size, old.root, new.root, proof)
    assert await client.consistency(new.size, new.size) == []
    answer = await client.call("GET", "/v1/log/consistency", query={"old": old.size})
    assert answer["new"] == new.size  # new defaults to the current tree


async def test_a_participant_reads_only_the_leaves_it_has_a_part_in(harness: HubHarness) -> None:
    """Hashes for all (anyone can check the tree); data where the participant is named or is a
    member of the leaf's case; the coordinator reads everything."""
    await activity(harness)  # coord and caw on CASE
    await activity(harness, "case-4tkrr2ctxludsoem55bncmwdru")  # another case of coord and caw only
    await harness.case_in("case-jvpvjowtclyma54fbde5dsx6ri", "in_screening", ["clb"])
    size = await harness.store.tree_size()
    everything = await harness.client("coord").call("GET", "/v1/log/leaves", query={"start": 0})
    assert all(item["data"] is not None for item in everything["leaves"])
    clb_view = await harness.client("clb").call("GET", "/v1/log/leaves", query={"start": 0})
    assert [i["hash"] for i in clb_view["leaves"]] == [i["hash"] for i in everything["leaves"]]
    assert len(clb_view["leaves"]) == size

    seen_by_clb: list[Any] = []
    for full, served in zip(everything["leaves"], clb_view["leaves"], strict=True):
        leaf = decode_leaf(base64.b64decode(full["data"]))
        concerns_clb = isinstance(leaf, DirectoryChange) or "clb" in named_participants(leaf)
        if served["data"] is None:
            assert served.get("withheld") is True
            assert not concerns_clb
        else:
            assert served["data"] == full["data"]
            assert "withheld" not in served
            seen_by_clb.append(leaf)
    about_cases = {case_of(leaf) for leaf in seen_by_clb} - {None}
    assert about_cases == {"case-jvpvjowtclyma54fbde5dsx6ri"}  # caw's cases stay out of clb's view
    assert any(isinstance(leaf, DirectoryChange) for leaf in seen_by_clb)


async def test_leaves_page_with_start_and_end(harness: HubHarness) -> None:
    await activity(harness)
    size = await harness.store.tree_size()
    client = harness.client("caw")
    page = await client.call("GET", "/v1/log/leaves", query={"start": 2, "end": 5})
    assert [item["index"] for item in page["leaves"]] == [2, 3, 4]
    tail = await client.call("GET", "/v1/log/leaves", query={"start": size})
    assert tail == {"leaves": []}


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/log/inclusion", {}),  # index is required
        ("/v1/log/inclusion", {"index": 99}),  # beyond the tree
        ("/v1/log/inclusion", {"index": 0, "size": 999}),  # a size the log never had
        ("/v1/log/inclusion", {"index": 0, "size": 0}),
        ("/v1/log/inclusion", {"index": "-1"}),
        ("/v1/log/inclusion", {"index": "\u00b2"}),  # a digit to str.isdigit, not to int()
        ("/v1/log/inclusion", {"index": "9" * 5000}),  # more digits than int() will parse
        ("/v1/log/consistency", {"old": 3, "new": 2}),
        ("/v1/log/consistency", {"old": 0, "new": 2}),  # from the empty tree: meaningless
        ("/v1/log/consistency", {"old": 1, "new": 999}),
        ("/v1/log/leaves", {"start": 999}),
        ("/v1/log/leaves", {"start": 3, "end": 2}),
        ("/v1/log/leaves", {"start": 0, "end": 1001}),
    ],
)
async def test_bad_log_queries_are_malformed(
    harness: HubHarness, path: str, query: dict[str, Any]
) -> None:
    await activity(harness)
    before = await harness.snapshot()
    problem = await refused(harness.client("caw").call("GET", path, query=query))
    assert (problem.status, problem.code) == (400, "malformed")
    action = path.rsplit("/", 1)[1]
    await harness.assert_refused(before, actor="caw", action=action, code="malformed")


async def test_healthz_and_metrics(harness: HubHarness) -> None:
    await activity(harness)
    async with harness.session.get(harness.url + "/healthz") as response:
        assert await response.json() == {
            "status": "ok",
            "log_size": await harness.store.tree_size(),
        }
    async with harness.session.get(harness.url + "/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    counts = await harness.store.counts()
    assert samples["livcr_hub_log_size"] == counts["log_size"]
    assert samples["livcr_hub_envelopes"] == counts["envelopes"] == 1
    assert samples["livcr_hub_deliveries_pending"] == 1
    assert samples['livcr_hub_requests_total{route="/v1/envelopes",status="201"}'] == 1
    assert samples['livcr_hub_requests_total{route="/v1/cases",status="201"}'] == 1
    assert samples['livcr_hub_envelopes_accepted_total{purpose="screening_vraag"}'] == 1
    # Metrics name routes, never case references or participants.
    assert CASE not in text
    assert "caw" not in text


async def test_checkpoints_are_kept_and_the_stored_log_verifies_after_shutdown(
    tmp_path: Path, clock: Clock, store_target: StoreTarget
) -> None:
    config = make_config(tmp_path, store_target, checkpoint_interval=0.05)
    async with running_hub(tmp_path, clock, config, store_target) as harness:
        await activity(harness)
        for _ in range(200):
            if await harness.store.checkpoints():
                break
            await asyncio.sleep(0.01)
        assert await harness.store.checkpoints(), "the background round saved no checkpoint"
        served = await public_checkpoint(harness)
    store = store_target.new()
    await store.open()
    try:
        sizes = [size for size, _ in await store.checkpoints()]
        assert sizes[-1] == served.size  # the shutdown saved the last one
        report = await verify_log(store, config, LOG_KEY.public.raw)
        assert report.ok, report.problems
        assert report.leaves == served.size
    finally:
        await store.close()


async def test_background_round_drops_expired_envelopes(
    tmp_path: Path, clock: Clock, store_target: StoreTarget
) -> None:
    config = make_config(tmp_path, store_target, checkpoint_interval=0.05)
    async with running_hub(tmp_path, clock, config, store_target) as harness:
        await harness.case_in(CASE, "in_screening", ["caw"])
        await harness.client("coord").submit(
            harness.seal("coord", ["caw"], case_ref=CASE, ttl=3600)
        )
        assert (await harness.store.counts())["envelopes"] == 1
        clock.advance(3600)
        for _ in range(200):
            if (await harness.store.counts())["envelopes"] == 0:
                break
            await asyncio.sleep(0.01)
        counts = await harness.store.counts()
        assert (counts["envelopes"], counts["deliveries_pending"]) == (0, 0)
        assert (await harness.client("caw").inbox())["deliveries"] == []
