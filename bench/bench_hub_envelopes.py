"""The hub's memory while it receives and serves large envelopes.

Usage: python bench/bench_hub_envelopes.py [--sizes 64,256] [--stores sqlite,postgresql]

For each store, starts `livcr hub serve` (default configuration, a fresh cell in a temporary
folder) and, for each size (MiB of body), seals an envelope from caw to coord into a file,
submits it as a streamed body (``HubClient.submit_file``), then fetches it back as coord with
the streaming ``GET /v1/deliveries/{id}`` into a file and compares its hash. Prints, per store
and size, the hub process's resident memory when idle (``VmRSS`` before the first transfer),
its peak (``VmHWM``) after receiving and after serving, the peak above idle, and the seconds
each transfer took. The target: the peak stays under 64 MiB above idle at every size, since
the hub never holds an envelope whole.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "attacks"))
from attack_process import hub_process
from factories import case_ref
from flood import rss_bytes
from hubproc import DAY, HubProcess

from livcr_exchange.audit.leaves import envelope_hash
from livcr_exchange.envelope import MessageSpec, seal
from livcr_exchange.keys import Suite
from livcr_exchange.service.hub_client import HubClient

MIB = 1024 * 1024


async def transfer(hub: HubProcess, size_mib: int, folder: Path) -> tuple[float, int, float, int]:
    """(seconds to submit, VmHWM after, seconds to fetch, VmHWM after) for one envelope."""
    members = hub.members
    spec = MessageSpec(
        "testcell",
        "caw",
        "aanmelding",
        case_ref(f"bench {size_mib} {time.time()}"),
        {"coord": members["coord"].prekey.public},
        Suite.X25519,
    )
    source = folder / f"{size_mib}.envelope"
    # Sealed in this process (the sender's cost), not measured.
    envelope = seal(
        members["caw"].identity,
        spec,
        b"x" * (size_mib * MIB),
        now=int(time.time()),
        ttl=DAY,
        random=os.urandom,
    )
    source.write_bytes(envelope)
    del envelope
    assert hub.process is not None
    pid = hub.process.pid
    timeout = aiohttp.ClientTimeout(total=900)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        binding = hub.binding
        caw = HubClient(hub.url, "caw", members["caw"].identity, session, hub=binding)
        coord = HubClient(hub.url, "coord", members["coord"].identity, session, hub=binding)
        started = time.perf_counter()
        answered = await caw.submit_file(source)
        submitted = time.perf_counter() - started
        after_in = rss_bytes(pid, "VmHWM")
        target = folder / f"{size_mib}.fetched"
        started = time.perf_counter()
        await coord.download(answered.receipt.message_id, target, source.stat().st_size)
        fetched = time.perf_counter() - started
        after_out = rss_bytes(pid, "VmHWM")
    assert envelope_hash(target.read_bytes()) == envelope_hash(source.read_bytes())
    source.unlink()
    target.unlink()
    return submitted, after_in, fetched, after_out


def run(store: str, sizes: list[int]) -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory() as folder, hub_process(store, Path(folder)) as hub:
        assert hub.process is not None
        idle = rss_bytes(hub.process.pid)
        for size in sizes:
            submitted, after_in, fetched, after_out = asyncio.run(transfer(hub, size, Path(folder)))
            peak = max(after_in, after_out) - idle
            lines.append(
                f"{store:<10} {size:>5} MiB {idle / MIB:>8.1f} {after_in / MIB:>10.1f}"
                f" {after_out / MIB:>10.1f} {peak / MIB:>10.1f} {submitted:>8.1f} {fetched:>8.1f}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256", help="MiB of body, comma-separated")
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'store':<10} {'body':>9} {'idle MiB':>8} {'HWM in':>10} {'HWM out':>10}"
        f" {'peak-idle':>10} {'in s':>8} {'out s':>8}"
    )
    for store in args.stores.split(","):
        for line in run(store, sizes):
            print(line, flush=True)


if __name__ == "__main__":
    main()
