"""What the gateway's commands share: its config, its token, and calls to its local API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import click

from livcr_exchange.service import config_files
from livcr_exchange.times import iso8601

from .config import GatewayConfig, load_config

CLIENT_TIMEOUT_SECONDS = 90.0  # above the API's own send timeout and longest poll

config_option = config_files.config_option("The gateway's TOML file (made by `livcr gateway init`)")


def load(config_path: Path) -> GatewayConfig:
    """The gateway's configuration; a bad one ends the command with the error naming the key."""
    return config_files.load_for_command(config_path, load_config)


def read_token(config: GatewayConfig) -> str:
    """The local API's bearer token; refused when other users could read it."""
    path = config.path(config.api.token_file)
    try:
        if path.stat().st_mode & 0o077:
            raise click.ClickException(f"{path}: the API token is readable by others (chmod 600)")
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot read the API token: {exc}") from exc
    if not token:
        raise click.ClickException(f"{path}: the API token file is empty")
    return token


def api_address(config: GatewayConfig) -> tuple[str, aiohttp.BaseConnector | None, str]:
    """Base URL, connector and a description of where the gateway listens."""
    api = config.api
    if api.unix_socket:
        path = str(config.path(api.unix_socket))
        return "http://localhost", aiohttp.UnixConnector(path=path), path
    host = "127.0.0.1" if api.host in {"", "0.0.0.0", "::"} else api.host  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    url = f"http://{host}:{api.port}"
    return url, None, url


def call_api(
    config: GatewayConfig,
    method: str,
    path: str,
    *,
    body: object = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request to the running gateway; the decoded JSON answer.

    Raises:
        click.ClickException: nothing listens there, or the gateway refused (code and detail).
    """
    token = read_token(config)

    async def run() -> tuple[int, Any]:
        base, connector, where = api_address(config)
        timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            try:
                async with session.request(
                    method,
                    base + path,
                    json=body,
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                ) as response:
                    return response.status, await response.json(content_type=None)
            except (aiohttp.ClientConnectionError, FileNotFoundError) as exc:
                raise click.ClickException(
                    f"no gateway answers at {where} ({type(exc).__name__});"
                    " is `livcr gateway serve` running?"
                ) from exc
            except json.JSONDecodeError as exc:
                raise click.ClickException(f"{where} did not answer with JSON") from exc

    status, answer = asyncio.run(run())
    if status >= 400:
        code = answer.get("code", "error") if isinstance(answer, dict) else "error"
        detail = answer.get("detail", "") if isinstance(answer, dict) else ""
        raise click.ClickException(f"refused ({status} {code}): {detail}")
    return status, answer


def when(seconds: int | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    return iso8601(seconds)


def read_json_file(handle: BinaryIO, what: str) -> Any:
    try:
        return json.loads(handle.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{what} is not JSON: {exc}") from exc
