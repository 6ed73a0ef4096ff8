"""Which failures a member gets explained, and which are treated as bugs."""

import pytest
from discord import app_commands

from advice.errors import InvalidInput, NotFound
from cogs._errors import _explain
from db import StorageUnavailable


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
    ],
)
def test_expected_errors_are_explained(error: Exception, fragment: str) -> None:
    message = _explain(error)
    assert message is not None and fragment in message


@pytest.mark.parametrize("bug", [invoked(RuntimeError("boom")), KeyError("x"), ValueError("v")])
def test_anything_else_is_a_bug(bug: Exception) -> None:
    assert _explain(bug) is None
