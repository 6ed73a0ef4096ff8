"""The invariants catch what they claim to: buttons planted in the real bot break each one.

A fuzz suite that never fails proves nothing unless its checks can fail; here each planted
handler misbehaves in one way and the probe must name exactly that.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import discord
import pytest
from sqlalchemy import delete

from cogs.core.reply import reply
from cogs.core.routing import button, form
from db.guild_settings import Setting, change
from db.journal import get_entry
from db.models import Decision
from tests.fuzz import invariants
from tests.fuzz.arena import Arena, marker
from tests.fuzz.invariants import ErrorLog, probe, skeleton
from tests.fuzz.test_components import forged_message

Handler = Callable[[discord.Interaction, list[str]], Awaitable[None]]


def test_skeleton_keeps_what_can_be_seen() -> None:
    assert skeleton(" a\u200b\x00b\n\ud800c\u3164 ") == "abc"
    assert skeleton("\ud83d\ude00") == "😀"  # both halves of a pair are one character
    assert skeleton("\u200d \ufe0f\t") == ""


def planted(declare: Callable[[str], Any], route: str, handler: Any) -> object:
    """An object declaring `handler` for `route`, as a feature cog declares its own."""

    class Planted:
        @declare(route)
        async def handle(self, *args: Any) -> None:
            await handler(*args)

    return Planted()


def plant(arena: Arena, route: str, handler: Handler) -> Callable[[], Awaitable[Any]]:
    """A button of `route` in the running bot, and a way for bob to press it."""
    arena.world.bot.router.add_routes(planted(button, route, handler))

    async def press() -> Any:
        bob = arena.world.bob
        message = forged_message(arena.bases[bob, "general"], f"cr:{route}", None)
        return await arena.emulator.click(bob, message, f"cr:{route}")

    return press


def broken(arena: Arena, errors: ErrorLog, route: str, handler: Handler) -> str:
    """What the probe says about bob pressing a button planted with `handler`."""
    press = plant(arena, route, handler)
    with pytest.raises(AssertionError) as failed:
        arena.run(probe(arena, arena.world.bob, press, what=route, errors=errors))
    return str(failed.value)


# The checks are the same on both databases: SQLite is enough to show they bite.
SQLITE_ONLY = pytest.mark.parametrize("arena", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_each_invariant_can_fail(
    arena: Arena, errors: ErrorLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = arena.world
    alice_secret = marker("alice", 0)

    async def leak(interaction: discord.Interaction, args: list[str]) -> None:
        await reply(interaction, f"alice wrote: {alice_secret}")

    assert "alice's private text was shown" in broken(arena, errors, "leak", leak)

    async def crash(interaction: discord.Interaction, args: list[str]) -> None:
        raise RuntimeError("a bug")

    report = broken(arena, errors, "crash", crash)
    assert "error id for bad input" in report
    assert "the bot logged an error" in report

    async def meddle(interaction: discord.Interaction, args: list[str]) -> None:
        async with world.database.transaction() as session:
            await session.execute(delete(Decision).where(Decision.user_id == world.alice))
        await reply(interaction, "done")

    assert "another member's data changed: decisions" in broken(arena, errors, "meddle", meddle)

    async def reconfigure(interaction: discord.Interaction, args: list[str]) -> None:
        async with world.database.transaction() as session:  # bob is no moderator here
            await change(
                session,
                guild_id=world.guild_id,
                user_id=interaction.user.id,
                setting=Setting.CHECKINS,
                now=world.clock.now(),
                checkins_enabled=False,
            )
        await reply(interaction, "done")

    report = broken(arena, errors, "reconfigure", reconfigure)
    assert "changed: guild_settings" in report and "changed: config_changes" in report

    async def peek(interaction: discord.Interaction, args: list[str]) -> None:
        newest = (await arena.entry_ids(world.alice))[-1]  # what a forged id reaches first
        async with world.database.read() as session:
            entry = await get_entry(session, world.bot.cipher, user_id=world.alice, entry_id=newest)
        await reply(interaction, entry.text)

    assert "alice's private text was shown" in broken(arena, errors, "peek", peek)

    async def ping(interaction: discord.Interaction, args: list[str]) -> None:
        await interaction.response.send_message(
            f"<@{world.alice}> look", allowed_mentions=discord.AllowedMentions(users=True)
        )

    assert "pinged someone" in broken(arena, errors, "ping", ping)

    async def silent(interaction: discord.Interaction, args: list[str]) -> None:
        await interaction.response.defer()

    monkeypatch.setattr(invariants, "ANSWER_TIMEOUT", 0.5)
    assert "no answer within 0.5s" in broken(arena, errors, "silent", silent)


@SQLITE_ONLY
def test_typed_text_must_be_kept(arena: Arena, errors: ErrorLog) -> None:
    """A form answered "thanks" without saving loses the text; one handing it back does not."""
    world = arena.world
    bob = world.bob

    async def thank(interaction: discord.Interaction, args: list[str], values: Any) -> None:
        await reply(interaction, "Thanks!")

    async def echo(interaction: discord.Interaction, args: list[str], values: Any) -> None:
        await reply(interaction, f"Not saved, here it is: {values['text']}")

    for route, handler in (("thank", thank), ("echo", echo)):
        world.bot.router.add_routes(planted(form, route, handler))

    def submit(route: str) -> Callable[[], Awaitable[Any]]:
        async def send() -> Any:
            text_input = {"type": 4, "custom_id": "text", "style": 2, "label": "Words"}
            modal = {
                "custom_id": f"cr:{route}",
                "title": "Planted",
                "components": [{"type": 18, "label": "Words", "component": text_input}],
            }
            return await arena.emulator.submit_modal(bob, modal, {"text": "my own words"})

        return send

    typed = ["my own words"]
    with pytest.raises(AssertionError, match="typed text neither saved nor handed back"):
        arena.run(probe(arena, bob, submit("thank"), what="thank", typed=typed, errors=errors))
    arena.run(probe(arena, bob, submit("echo"), what="echo", typed=typed, errors=errors))
