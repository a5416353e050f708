"""Reading a service's TOML configuration, for hub and gateway alike.

The file is read, parsed as TOML and converted to the service's msgspec struct; every error
names the file and the offending key (``- at `$.section.key```). The ``--config`` option of
every command that takes one also reads ``$LIVCR_CONFIG``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import click
import msgspec

from ..errors import LivcrError
from .cli_env import CONFIG_ENV

C = TypeVar("C")
F = TypeVar("F", bound=Callable[..., object])


class ConfigError(Exception):
    """The configuration file is missing, not TOML, or has a bad or unknown key."""


def parse_toml(
    text: str, kind: type[C], base_dir: Path, source: str, *, service: str, other: str
) -> C:
    """Validate TOML ``text`` as ``kind``, with ``base_dir`` set to the file's folder.

    ``service`` names our section (``hub``, ``gateway``); a file with the ``other`` service's
    section and not ours is that service's configuration, and the error says so.

    Raises:
        ConfigError: naming ``source`` and the offending key.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    if other in raw and service not in raw:
        raise ConfigError(
            f"{source}: this is a {other}'s configuration (it has a [{other}] section);"
            f" {service} commands take the {service}'s {service}.toml"
            f" (made by `livcr {service} init`)"
        )
    raw["base_dir"] = str(base_dir)
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def check_keys(source: str, checks: Iterable[tuple[str, Callable[[], object]]]) -> None:
    """Run each (key path, check); a LivcrError becomes a ConfigError naming that key."""
    for key, check in checks:
        try:
            check()
        except LivcrError as exc:
            raise ConfigError(f"{source}: {exc} - at `$.{key}`") from exc


def load_toml(path: Path, parse: Callable[[str, Path, str], C]) -> C:
    """Read ``path`` and ``parse(text, folder, name)`` it. Raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse(text, path.resolve().parent, str(path))


def config_option(made_by: str) -> Callable[[F], F]:
    """The ``--config`` option (or $LIVCR_CONFIG) of a command; ``made_by``: the file and the
    command that makes it, e.g. "The hub's TOML file (made by `livcr hub init`)"."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        required=True,
        envvar=CONFIG_ENV,
        show_envvar=True,
        help=f"{made_by}.",
    )


def load_for_command(path: Path, load: Callable[[Path], C]) -> C:
    """``load(path)``, a ConfigError ending the command with its message."""
    try:
        return load(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
