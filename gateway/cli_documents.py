"""The command line's documents: ``send --attach FILE`` uploads each file through the running
gateway's API (streamed; its type read from its content unless ``--attach-type`` says it), and
``livcr gateway attachment get`` saves a document of the dossier to a file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import click

from livcr_exchange.sniff import media_type_of

from .cli_client import CLIENT_TIMEOUT_SECONDS, api_address, config_option, load, read_token
from .config import GatewayConfig

_HEAD_BYTES = 1024
_CHUNK = 64 * 1024


def declared_type(path: Path, given: str | None) -> str:
    if given:
        return given
    with path.open("rb") as handle:
        found = media_type_of(handle.read(_HEAD_BYTES))
    if found is None:
        raise click.ClickException(f"{path.name}: not a document type a purpose carries")
    return found.value


async def _request(config: GatewayConfig, method: str, path: str, **kwargs: Any) -> Any:
    base, connector, where = api_address(config)
    headers = {"Authorization": f"Bearer {read_token(config)}", **kwargs.pop("headers", {})}
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_SECONDS * 20)
    session = aiohttp.ClientSession(connector=connector, timeout=timeout)
    try:
        response = await session.request(method, base + path, headers=headers, **kwargs)
    except (aiohttp.ClientConnectionError, FileNotFoundError) as exc:
        await session.close()
        raise click.ClickException(f"no gateway answers at {where} ({type(exc).__name__})") from exc
    if response.status >= 400:
        answer = await response.json(content_type=None)
        await session.close()
        raise click.ClickException(
            f"refused ({response.status} {answer.get('code')}): {answer.get('detail')}"
        )
    return session, response


def upload_files(config: GatewayConfig, paths: list[Path], types: list[str]) -> list[str]:
    """Upload each file; their attachment ids, in order."""

    async def one(path: Path, media_type: str) -> str:
        with path.open("rb") as handle:
            session, response = await _request(
                config,
                "POST",
                "/v1/attachments",
                params={"name": path.name},
                data=handle,
                headers={"Content-Type": media_type},
            )
            async with session, response:
                return str((await response.json())["attachment_id"])

    async def run() -> list[str]:
        given = types + [""] * (len(paths) - len(types))
        return [
            await one(p, declared_type(p, t or None)) for p, t in zip(paths, given, strict=True)
        ]

    return asyncio.run(run())


def save_document(config: GatewayConfig, message_id: str, n: int, out: Path) -> int:
    """Stream the ``n``-th document of a message to ``out``; its size."""

    async def run() -> int:
        session, response = await _request(
            config, "GET", f"/v1/messages/{message_id}/attachments/{n}"
        )
        size = 0
        async with session, response:
            with out.open("wb") as handle:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    handle.write(chunk)
                    size += len(chunk)
        return size

    return asyncio.run(run())


@click.group("attachment")
def attachment_group() -> None:
    """Documents of the dossier."""


@attachment_group.command("get")
@config_option
@click.argument("message_id")
@click.argument("n", type=click.IntRange(0, 1000))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def get(config_path: Path, message_id: str, n: int, out: Path) -> None:
    """Save the N-th document of message MESSAGE_ID to --out."""
    size = save_document(load(config_path), message_id, n, out)
    click.echo(f"saved {out} ({size} bytes)")


COMMANDS = (attachment_group,)
