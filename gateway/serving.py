"""`livcr gateway serve`: the gateway and its local API in the foreground, start to stop line."""

from __future__ import annotations

import asyncio
import importlib.metadata
import signal

import aiohttp
import click
import structlog

from livcr_exchange.errors import LivcrError
from livcr_exchange.service.cli_env import key_passphrase
from livcr_exchange.service.hub_client import HubRefused
from livcr_exchange.service.logs import configure_logging
from livcr_exchange.service.private import serve_privately
from livcr_exchange.service.sdnotify import sd_notify

from .api import create_api, serving
from .cli_client import read_token
from .config import GatewayConfig
from .facade import Gateway
from .localbox import LocalKeyError
from .store import StoreLocked, StoreRefused, StoreTooNew
from .trust import TrustFailure


def serve_until_stopped(config: GatewayConfig) -> None:
    """Run the gateway until SIGINT or SIGTERM.

    Raises:
        click.ClickException: the files cannot be made private, or the gateway did not start
            (its key, store, trust in the hub's directory, or the hub itself), with the reason.
    """
    configure_logging(config.logging.format, config.logging.level)
    try:
        serve_privately(config.path("."), config.path(config.gateway.database))
    except OSError as exc:
        raise click.ClickException(f"cannot make the gateway's files private: {exc}") from exc
    token = read_token(config)
    passphrase = key_passphrase()
    try:
        asyncio.run(_serve(config, token, passphrase))
    except (LivcrError, LocalKeyError, TrustFailure, HubRefused, StoreRefused, ValueError) as exc:
        raise click.ClickException(f"the gateway did not start: {exc}") from exc
    except (StoreLocked, StoreTooNew) as exc:
        raise click.ClickException(f"the gateway did not start: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise click.ClickException(
            f"the gateway did not start: the hub at {config.gateway.hub_url} did not answer: {exc}"
        ) from exc
    except OSError as exc:
        raise click.ClickException(f"the gateway did not start: {exc}") from exc


async def _serve(config: GatewayConfig, token: str, passphrase: bytes) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log = structlog.get_logger("livcr.gateway")
    facts = {
        "version": importlib.metadata.version("livcr-exchange"),
        "cell": config.gateway.cell_id,
        "participant": config.participant_id,
        "store": f"sqlite:{config.path(config.gateway.database).resolve()}",
        "hub": config.gateway.hub_url,
    }
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Gateway.open(config, passphrase=passphrase) as gateway:
            api = config.api
            socket_path = str(config.path(api.unix_socket)) if api.unix_socket else ""
            app = create_api(gateway, token)
            async with serving(app, host=api.host, port=api.port, unix_socket=socket_path) as at:
                facts["listen"] = at
                log.info("gateway started", **facts)
                sd_notify("READY=1", f"STATUS=serving {at}")  # systemd's Type=notify
                await stop.wait()
                sd_notify("STOPPING=1")
                log.info("gateway stopping", **facts)
        log.info("gateway stopped", **facts)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
