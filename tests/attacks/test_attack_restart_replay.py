"""Finding: replay after a restart. A signed request captured within its five-minute window is
refused after the hub was killed and started again, on both stores: the nonce is durable."""

from __future__ import annotations

import os
import time

import aiohttp
import attack_process
from hubproc import HubProcess

from livcr_exchange.cases import mint_case_ref
from livcr_exchange.request_auth import RequestTarget, sign_request
from livcr_exchange.service.problems import PROBLEM_TYPE

hub_process_fixture = attack_process.hub_process_fixture


async def test_a_captured_request_is_refused_after_a_kill_and_restart(
    hub_process: HubProcess,
) -> None:
    case_ref = mint_case_ref(os.urandom)
    path = f"/v1/cases/{case_ref}/members"
    add = b'{"add": ["clb"]}'
    identity = hub_process.members["coord"].identity
    async with aiohttp.ClientSession() as session:
        coord = hub_process.client("coord", session)
        await coord.open_case(case_ref, ["caw"])
        # The attacker captures the coordinator's "add clb" on its way to the hub.
        captured = sign_request(
            RequestTarget("POST", path, "", add),
            "coord",
            identity,
            hub=hub_process.binding,
            now=int(time.time()),
            random=os.urandom,
        )
        captured["Content-Type"] = "application/json"
        async with session.post(hub_process.url + path, data=add, headers=captured) as answer:
            assert answer.status == 200
        case = await coord.call("POST", path, body=b'{"remove": ["clb"]}')
        assert "clb" not in case["members"]

    hub_process.kill()
    hub_process.start()

    async with aiohttp.ClientSession() as session:
        async with session.post(hub_process.url + path, data=add, headers=captured) as answer:
            assert answer.status == 409
            assert (await answer.json(content_type=PROBLEM_TYPE))["code"] == "replayed"
        case = await hub_process.client("coord", session).call("GET", f"/v1/cases/{case_ref}")
        assert "clb" not in case["members"]
