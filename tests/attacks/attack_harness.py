"""Helpers for the attack tests that run against the in-process hub (tests/hub/hub_harness.py):
raw signed requests answered as bytes, and minted case references."""

from __future__ import annotations

import attack_process  # noqa: F401  (puts tests/ and tests/hub on sys.path)
from factories import det_bytes
from hub_harness import HubHarness
from yarl import URL

from livcr_exchange.cases import mint_case_ref


def minted(label: str) -> str:
    """A case reference in the minted form, the same for the same label every run."""
    return mint_case_ref(lambda size: det_bytes(f"case ref {label}", size))


async def raw(
    harness: HubHarness,
    participant_id: str,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request signed by ``participant_id`` (or sent with ``headers`` as given); returns
    the status and the answer's exact bytes."""
    if headers is None:
        headers = harness.signed_headers(participant_id, method, path, query, body)
    url = URL(harness.url + path + (f"?{query}" if query else ""), encoded=True)
    async with harness.session.request(method, url, data=body, headers=headers) as response:
        return response.status, await response.read()
