"""The hub under an unauthenticated flood: its memory, how long slow senders hold a connection.

Usage: python bench/bench_hub_attack.py [--bodies N] [--store sqlite|postgresql]

Starts `livcr hub serve` (default configuration, a fresh cell in a temporary folder) and runs
the flood of tests/attacks/flood.py against it: N parallel bodies of the largest size the hub
accepts (half with headers that pass the header pre-check, half with none), and N slow bodies
trickling 10 bytes every half second. Prints the hub process's resident memory before the
flood, its peak (``VmHWM``) and after, the configured body budget, how long the hub took to
close the slow connections, and the slowest /healthz answer during the flood.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "attacks"))
from attack_process import hub_process
from flood import Flood

MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=24, help="parallel bodies of each kind")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, hub_process(args.store, Path(folder)) as hub:
        assert hub.process is not None
        section = hub.config.hub
        flood = Flood(
            hub.port,
            hub.process.pid,
            "caw",
            hub.members["caw"].identity.key_id,
            section.max_request_bytes - 1,
            hub.binding,
            count=args.bodies,
        )
        figures = asyncio.run(flood.run())
    print(
        f"store: {args.store}; {args.bodies} big bodies of {section.max_request_bytes // MIB}"
        f" MiB and {args.bodies} slow bodies at once"
    )
    print(f"body budget:       {section.body_memory_budget_bytes / MIB:8.1f} MiB")
    print(f"hub RSS before:    {figures.rss_before / MIB:8.1f} MiB")
    print(f"hub RSS peak:      {figures.rss_peak / MIB:8.1f} MiB")
    print(f"hub RSS after:     {figures.rss_after / MIB:8.1f} MiB")
    closed = sorted(figures.slow_closed_after)
    print(
        f"slow connections closed after {closed[0]:.2f} s to {closed[-1]:.2f} s"
        f" ({len(closed)} of {args.bodies}; deadline {section.body_grace_seconds:.0f} s"
        " plus length / minimum rate)"
    )
    statuses = sorted(str(s) for s in figures.big_statuses)
    print(f"big bodies answered: {', '.join(statuses)} (None: closed before the answer)")
    print(f"slowest /healthz during the flood: {figures.healthz_worst * 1000:.0f} ms")


if __name__ == "__main__":
    main()
