"""A local Discord emulator (REST + gateway on 127.0.0.1) for driving the real bot offline.

See ``sandbox.emulator`` for the why and the how; ``sandbox.console`` puts a terminal on top.
"""

from ._interactions import DidNotRespond, Interaction
from ._world import GUILD_ANNOUNCEMENT, GUILD_CATEGORY, GUILD_TEXT, GUILD_VOICE
from .emulator import DEFAULT_SPEC_PATH, Emulator, RequestRecord, Violation, point_discord_at

__all__ = [
    "DEFAULT_SPEC_PATH",
    "GUILD_ANNOUNCEMENT",
    "GUILD_CATEGORY",
    "GUILD_TEXT",
    "GUILD_VOICE",
    "DidNotRespond",
    "Emulator",
    "Interaction",
    "RequestRecord",
    "Violation",
    "point_discord_at",
]
