"""An application embedding a gateway: its logger (stdlib or structlog), its passphrase."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import structlog

from gateway.config import parse_config
from gateway.core import Gateway
from gateway.eventlog import StdlibEventLogger, event_logger


def test_a_stdlib_logger_gets_the_event_and_its_fields(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("host.livcr")
    log = event_logger(logger)
    assert isinstance(log, StdlibEventLogger)
    with caplog.at_level(logging.INFO, logger="host.livcr"):
        log.info("queued", purpose="aanmelding", recipients=1)
        log.warning("message refused", code="replayed")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "queued purpose='aanmelding' recipients=1"),
        ("WARNING", "message refused code='replayed'"),
    ]
    assert caplog.records[0].livcr == {"purpose": "aanmelding", "recipients": 1}  # type: ignore[attr-defined]


def test_below_its_level_a_stdlib_logger_formats_nothing(caplog: pytest.LogCaptureFixture) -> None:
    log = event_logger(logging.getLogger("host.quiet"))
    with caplog.at_level(logging.WARNING, logger="host.quiet"):
        log.info("queued", purpose="aanmelding")
    assert caplog.records == []


def test_a_structlog_logger_is_used_as_it_is() -> None:
    logger = structlog.get_logger("host")
    assert event_logger(logger) is logger


async def test_without_a_passphrase_the_error_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIVCR_PASSPHRASE", raising=False)
    key = "livcr-ed25519:" + "A" * 43
    config = parse_config(
        f'[gateway]\nparticipant_id = "caw"\ncell_id = "gent"\nroot_key = "{key}"\n'
        f'hub_url = "http://127.0.0.1:1"\nhub_log_key = "{key}"\n',
        tmp_path,
    )
    with pytest.raises(
        ValueError, match=r"^no passphrase: pass passphrase= or set LIVCR_PASSPHRASE$"
    ):
        async with Gateway.open(config):
            pass
