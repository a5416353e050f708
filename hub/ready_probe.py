"""Whether a hub process is ready: one probe of its /readyz, or a wait with a deadline.

Scripts and service managers wait on this instead of sleeping a fixed time: a loaded machine
starts a hub slower than any guess.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from typing import Any

from .config import HubConfig

# Ready, not merely alive: the store is open and commits, and the log is loaded (hub/readiness.py).
READY_PATH = "/readyz"
PROBE_TIMEOUT_SECONDS = 2.0
FIRST_INTERVAL_SECONDS = 0.05
MAX_INTERVAL_SECONDS = 0.5
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104  (names, not a bind)


class NotReady(Exception):
    """The hub did not answer ready before the deadline."""


def hub_url(config: HubConfig, port: int | None = None) -> str:
    """Where a process of this configuration listens (a wildcard host is probed on loopback)."""
    host = "127.0.0.1" if config.hub.host in WILDCARD_HOSTS else config.hub.host
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if config.tls is not None else "http"
    return f"{scheme}://{host}:{config.hub.port if port is None else port}"


def pinned_context(config: HubConfig) -> ssl.SSLContext | None:
    """For a TLS hub: trust exactly the certificate it serves (its own, from the config), so a
    probe on loopback needs neither its host name nor its issuer."""
    if config.tls is None:
        return None
    context = ssl.create_default_context(cafile=str(config.path(config.tls.cert_file)))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = False  # the certificate itself is the anchor: it is pinned
    return context


def probe(base_url: str, context: ssl.SSLContext | None = None) -> dict[str, Any] | None:
    """The hub's health answer, or None when nothing serves there (yet)."""
    try:
        with urllib.request.urlopen(  # noqa: S310  (an http(s) URL built by hub_url)
            base_url + READY_PATH, timeout=PROBE_TIMEOUT_SECONDS, context=context
        ) as response:
            answer = json.loads(response.read())
    except (OSError, ValueError):  # a 503 (not ready) is an HTTPError, an OSError
        return None
    return answer if isinstance(answer, dict) and answer.get("status") == "ready" else None


def wait_ready(
    base_url: str, seconds: float, context: ssl.SSLContext | None = None
) -> dict[str, Any]:
    """Poll until the hub answers ready; its health answer.

    Raises:
        NotReady: nothing answered ready within ``seconds``.
    """
    deadline = time.monotonic() + seconds
    interval = FIRST_INTERVAL_SECONDS
    while True:
        answer = probe(base_url, context)
        if answer is not None:
            return answer
        left = deadline - time.monotonic()
        if left <= 0:
            raise NotReady(f"the hub at {base_url} did not answer ready within {seconds:g} s")
        time.sleep(min(interval, left))  # a poll interval, bounded by the deadline
        interval = min(interval * 2, MAX_INTERVAL_SECONDS)
