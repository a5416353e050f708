"""The gateway's metrics in the Prometheus text format: its queues, quarantine and health."""

from __future__ import annotations

from collections.abc import Mapping

GAUGES = {
    "outbox_pending": "Messages waiting in the outbox",
    "outbox_failed": "Messages refused for good, kept until an operator acts",
    "quarantined": "Received envelopes that failed a check, kept sealed",
    "dossier_records": "Records in the dossier",
    "unread": "Received messages not handed over yet",
}


def exposition(
    status: Mapping[str, object], restarts: Mapping[str, int], long_polls: int = 0
) -> str:
    """The text exposition of ``status`` (``Gateway.status``), the tasks' restart counts and
    the number of long polls waiting on ``GET /v1/messages``."""
    lines = []
    for key, text in GAUGES.items():
        lines += [f"# HELP livcr_gateway_{key} {text}", f"# TYPE livcr_gateway_{key} gauge"]
        lines.append(f"livcr_gateway_{key} {int(str(status.get(key, 0)))}")
    flags = {
        "connected": ("Connected to the hub's push stream", bool(status.get("connected"))),
        "halted": ("Stopped trusting the hub", status.get("halted") is not None),
        "degraded": ("A background task crashed in the last minute", bool(status.get("degraded"))),
    }
    for key, (text, value) in flags.items():
        lines += [f"# HELP livcr_gateway_{key} {text}", f"# TYPE livcr_gateway_{key} gauge"]
        lines.append(f"livcr_gateway_{key} {int(value)}")
    lines += [
        "# HELP livcr_gateway_long_polls Long polls waiting for a message",
        "# TYPE livcr_gateway_long_polls gauge",
        f"livcr_gateway_long_polls {long_polls}",
    ]
    lines += [
        "# HELP livcr_gateway_task_restarts_total Background task restarts after a crash",
        "# TYPE livcr_gateway_task_restarts_total counter",
    ]
    lines += [f'livcr_gateway_task_restarts_total{{task="{t}"}} {n}' for t, n in restarts.items()]
    return "\n".join(lines) + "\n"
