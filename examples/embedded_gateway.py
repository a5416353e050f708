"""Embedding a gateway in a Python service: send a referral, then read what has arrived.

It runs against the cell of the README's gateway walk-through, with the CAW's gateway not
serving (embedding replaces `livcr gateway serve`); the passphrase comes from $LIVCR_PASSPHRASE.
"""

import asyncio
import logging
import sys
from pathlib import Path

from gateway.config import load_config
from gateway.core import Gateway

# The gateway logs to this stdlib logger (a structlog one works too), not into our output.
gateway_log = logging.getLogger("caw.livcr")

REFERRAL = {  # the purpose tag may be left out: the gateway fills it in
    "legal_ground": ["decreet_2021"],
    "special_category": False,
    "person": {"family_name": "Voorbeeld", "given_name": "Sam", "birth_date": "2008-05-17"},
    "minor": True,
    "concern_category": "extreemrechts",
    "urgency": "normaal",
    "description": "Deelt propaganda in de klasgroep.",
    "referrer_contact": {"organisation": "CAW Voorbeeldstad", "name": "An Medewerker"},
}


async def refer(config_file: Path) -> None:
    config = load_config(config_file)
    async with Gateway.open(config, logger=gateway_log) as gw:
        case_ref = gw.new_case_ref()  # random and meaningless, never derived from a person
        receipt = await gw.send(case_ref, "aanmelding", to=["coord"], body=REFERRAL)
        print(f"referred {case_ref}: leaf {receipt.leaf_index} of the hub's log, proven")
        # follow=False: what has arrived so far; the default waits for more, without end.
        async for message in gw.messages(follow=False):
            print(f"received {message.purpose} on {message.case_ref} from {message.sender_id}")
        print("inbox read")


if __name__ == "__main__":
    asyncio.run(refer(Path(sys.argv[1] if len(sys.argv) > 1 else "/srv/cell/caw/gateway.toml")))
