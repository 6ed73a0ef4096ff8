"""A local Discord emulator (REST + gateway on 127.0.0.1) for driving the real bot offline.

See ``sandbox.emulator`` for the why and the how; ``sandbox.console`` puts a terminal on top.
Names are imported on first use, so a bot that only needs ``sandbox.redirect`` (pointed at an
emulator in another process) never loads the emulator itself (aiohttp's server, jsonschema).
"""

import importlib
from typing import Any

_HOMES = {
    "DEFAULT_SPEC_PATH": ".emulator",
    "DidNotRespond": "._interactions",
    "Emulator": ".emulator",
    "GUILD_ANNOUNCEMENT": "._world",
    "GUILD_CATEGORY": "._world",
    "GUILD_TEXT": "._world",
    "GUILD_VOICE": "._world",
    "Interaction": "._interactions",
    "RequestRecord": ".emulator",
    "Violation": ".emulator",
    "point_discord_at": ".redirect",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name], __name__), name)
