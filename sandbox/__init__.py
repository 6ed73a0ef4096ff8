"""A local Discord emulator (REST + gateway on 127.0.0.1) for driving the real bot offline.

See ``sandbox.emulator`` for the why and the how; ``sandbox.console`` puts a terminal on top.
Names are imported on first use, so a bot that only needs ``sandbox.redirect`` (pointed at an
emulator in another process) never loads the emulator itself (aiohttp's server, jsonschema).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for type checkers (at run time they load on first use)
    from ._interactions import DidNotRespond, Interaction
    from ._rest import RestApi
    from ._validation import JSON, Problem, SpecValidator
    from ._world import (
        GUILD_ANNOUNCEMENT,
        GUILD_CATEGORY,
        GUILD_TEXT,
        GUILD_VOICE,
        Snowflakes,
    )
    from .emulator import DEFAULT_SPEC_PATH, Emulator, RequestRecord, Violation
    from .redirect import point_discord_at

_HOMES = {
    "DEFAULT_SPEC_PATH": ".emulator",
    "DidNotRespond": "._interactions",
    "Emulator": ".emulator",
    "GUILD_ANNOUNCEMENT": "._world",
    "GUILD_CATEGORY": "._world",
    "GUILD_TEXT": "._world",
    "GUILD_VOICE": "._world",
    "Interaction": "._interactions",
    "JSON": "._validation",
    "Problem": "._validation",
    "RestApi": "._rest",
    "Snowflakes": "._world",
    "SpecValidator": "._validation",
    "RequestRecord": ".emulator",
    "Violation": ".emulator",
    "point_discord_at": ".redirect",
}
__all__ = [
    "DEFAULT_SPEC_PATH",
    "GUILD_ANNOUNCEMENT",
    "GUILD_CATEGORY",
    "GUILD_TEXT",
    "GUILD_VOICE",
    "JSON",
    "DidNotRespond",
    "Emulator",
    "Interaction",
    "Problem",
    "RequestRecord",
    "RestApi",
    "Snowflakes",
    "SpecValidator",
    "Violation",
    "point_discord_at",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name], __name__), name)
