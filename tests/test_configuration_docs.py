"""docs/configuration.md is generated from the config structs and up to date."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import msgspec

from gateway.config import MEANINGS as GATEWAY_MEANINGS
from gateway.config import GatewayConfig
from hub.config import MEANINGS as HUB_MEANINGS
from hub.config import HubConfig

DOCS = Path(__file__).resolve().parent.parent / "docs"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_configuration", DOCS / "generate_configuration.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def keys_of(config_type: type[msgspec.Struct]) -> set[str]:
    found = set()
    for section in msgspec.structs.fields(config_type):
        if section.name == "base_dir":
            continue
        kind = section.type
        for candidate in getattr(kind, "__args__", (kind,)):
            if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
                found |= {f"{section.name}.{f.name}" for f in msgspec.structs.fields(candidate)}
    return found


def test_every_key_has_a_meaning_and_no_meaning_is_stale() -> None:
    assert keys_of(HubConfig) == set(HUB_MEANINGS)
    assert keys_of(GatewayConfig) == set(GATEWAY_MEANINGS)


def test_regenerating_changes_nothing() -> None:
    text = generator().render()
    assert (DOCS / "configuration.md").read_text() == text
    for key in ("`cert_file`", "`pool_size`", "`unix_socket`", "`retry_max_seconds`"):
        assert key in text
