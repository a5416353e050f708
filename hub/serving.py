"""`livcr hub serve`: the hub's HTTP server in the foreground, from start line to stop line."""

from __future__ import annotations

import ssl
from typing import Any

import click
import structlog
from aiohttp import web

from livcr_exchange.service.logs import configure_logging
from livcr_exchange.service.private import serve_privately
from livcr_exchange.service.sdnotify import sd_notify

from . import operator, reports
from .app import create_app
from .config import HubConfig
from .console.app import console_listener
from .keyfiles import KeyFileError, read_log_key


def serve_until_stopped(config: HubConfig, port: int | None) -> None:
    """Serve on ``port`` (default: the config's) until SIGINT or SIGTERM.

    Raises:
        click.ClickException: the files cannot be made private, the log key or the TLS
            certificate cannot be read, or the address cannot be listened on.
    """
    configure_logging(config.logging.format, config.logging.level)
    sqlite = config.path(config.store.path) if config.store.kind == "sqlite" else None
    try:
        serve_privately(config.path("."), sqlite)
    except OSError as exc:
        raise click.ClickException(f"cannot make the hub's files private: {exc}") from exc
    try:
        log_key = read_log_key(config.path(config.hub.log_key_file))
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    app = create_app(config, store=operator.open_store(config), log_key=log_key)
    host, port = config.hub.host, config.hub.port if port is None else port
    ssl_context = _tls_context(config)
    if config.console is not None:
        app.cleanup_ctx.append(console_listener(config.console, ssl_context))
    facts = {
        "version": reports.package_version(),
        "cell": config.hub.cell_id,
        "store": store_description(config),
        "listen": f"{'https' if ssl_context else 'http'}://{host}:{port}",
    }
    log = structlog.get_logger("livcr.hub")
    try:
        web.run_app(
            app,
            host=host,
            port=port,
            ssl_context=ssl_context,
            access_log=None,
            # aiohttp announces here once it listens: a JSON line instead of its text banner,
            # and readiness for systemd (Type=notify).
            print=lambda _banner: started(log, facts),
        )
    except OSError as exc:  # the port is taken, the address is not ours, ...
        reason = exc.strerror or str(exc)
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from exc
    log.info("hub stopped", **facts)


def _tls_context(config: HubConfig) -> ssl.SSLContext | None:
    if config.tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.path(config.tls.cert_file), config.path(config.tls.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise click.ClickException(f"tls: cannot load the certificate or key: {exc}") from exc
    return context


def started(log: Any, facts: dict[str, str]) -> None:
    log.info("hub started", **facts)
    sd_notify("READY=1", f"STATUS=serving {facts['listen']}")


def store_description(config: HubConfig) -> str:
    """Which store, for a log line: a SQLite file's path; never a DSN (it may hold a password)."""
    if config.store.kind == "sqlite":
        return f"sqlite:{config.path(config.store.path).resolve()}"
    return "postgresql"
