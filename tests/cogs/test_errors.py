"""Which failures a member gets explained, and which are treated as bugs."""

from types import SimpleNamespace

import discord
import pytest
from discord import app_commands

from advice.errors import InvalidInput, NotFound
from cogs.core.errors import _explain
from db import StorageUnavailable
from db.crypto import DecryptionFailed


def refused(status: int, code: int = 0) -> discord.HTTPException:
    """What discord.py raises when Discord answers our request with `status`."""
    response = SimpleNamespace(status=status, reason="refused")
    kind = discord.DiscordServerError if status >= 500 else discord.HTTPException
    return kind(response, {"code": code, "message": "refused"})  # type: ignore[arg-type]


def invoked(error: Exception) -> app_commands.CommandInvokeError:
    command = app_commands.Command(name="x", description="x", callback=_noop)
    return app_commands.CommandInvokeError(command, error)


async def _noop(interaction) -> None:  # type: ignore[no-untyped-def]
    return None


@pytest.mark.parametrize(
    ("error", "fragment"),
    [
        (invoked(NotFound("Entry not found.")), "Entry not found."),
        (InvalidInput("Pick one."), "Pick one."),
        (invoked(StorageUnavailable()), "nothing was saved"),
        (app_commands.NoPrivateMessage(), "inside a server"),
        (app_commands.MissingPermissions(["manage_guild"]), "Manage Server"),
        (invoked(DecryptionFailed("wrong key")), "can't be decrypted"),
        (invoked(refused(413, 40005)), "too large"),
        (refused(503), "Discord had trouble"),
    ],
)
def test_expected_errors_are_explained(error: Exception, fragment: str) -> None:
    message = _explain(error)
    assert message is not None and fragment in message


@pytest.mark.parametrize(
    "bug",
    [
        invoked(RuntimeError("boom")),
        KeyError("x"),
        ValueError("v"),
        refused(400, 50035),  # Discord refused what we sent: ours to fix, with an error id
    ],
)
def test_anything_else_is_a_bug(bug: Exception) -> None:
    assert _explain(bug) is None
