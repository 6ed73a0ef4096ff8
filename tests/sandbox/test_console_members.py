"""The console as another member and in other channels (:as, :in, :channel), and the bot's posts
in the server's channels, against the real emulator and a small discord.py bot.

The bot posts and DMs before it answers a command, so what the console prints after each line is
in a fixed order.
"""

from __future__ import annotations

import contextlib
import io
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import discord
import pytest
from discord import app_commands

from sandbox import Emulator, console
from sandbox.console import render_channel, render_channels, render_post, run_console
from tests.sandbox.clients import TreeClient, pointed_emulator, running


class Bot(TreeClient):
    def __init__(self, reflections: int) -> None:
        super().__init__()
        tree = self.tree

        @tree.command(name="whoami", description="Who and where")
        async def whoami(interaction: discord.Interaction) -> None:
            channel = interaction.channel
            name = getattr(channel, "name", "DM")
            await interaction.response.send_message(
                f"{interaction.user.name} in #{name}", ephemeral=True
            )

        @tree.command(name="config", description="Moderators only")
        @app_commands.guild_only()
        @app_commands.default_permissions(manage_guild=True)
        async def config(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("configured", ephemeral=True)

        @tree.command(name="share", description="Posts in #reflections and DMs you")
        async def share(interaction: discord.Interaction, text: str) -> None:
            channel = self.get_channel(reflections)
            assert isinstance(channel, discord.TextChannel)
            await channel.send(f"Shared: **{text}**")
            await interaction.user.send(f"<@{interaction.user.id}>, you shared in <#{reflections}>")
            await interaction.response.send_message("posted", ephemeral=True)

        @tree.command(name="sloppy", description="Answers, after a post Discord refuses")
        async def sloppy(interaction: discord.Interaction) -> None:
            channel = interaction.channel
            assert isinstance(channel, discord.TextChannel)
            with contextlib.suppress(discord.HTTPException):  # the bot hides its mistake
                await channel.send("x" * 2001)
            await interaction.response.send_message("all fine", ephemeral=True)


@dataclass
class Server:
    emu: Emulator
    guild: int
    general: int
    reflections: int
    you: int


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "SETTLE_QUIET_SECONDS", 0.01)
    monkeypatch.setattr(console, "DM_POLL_SECONDS", 0.01)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with pointed_emulator() as emu:
        guild = emu.add_guild("Sandbox")
        general = emu.add_text_channel(guild, "general")
        reflections = emu.add_text_channel(guild, "reflections")
        emu.add_channel(guild, "Lounge", type=2)
        emu.add_channel(guild, "Archive", type=4)
        you = emu.add_user("you")
        emu.add_member(guild, you, manage_guild=True)
        async with running(Bot(reflections)) as bot:
            await bot.tree.sync()
            yield Server(emu, guild, general, reflections, you)


class Typed(io.StringIO):
    """Input from a terminal: the console prompts for each line."""

    def isatty(self) -> bool:
        return True


async def session(server: Server, script: list[str], *, typed: bool = False) -> str:
    out = io.StringIO()
    lines = "".join(line + "\n" for line in script)
    await run_console(
        server.emu,
        guild_id=server.guild,
        channel_id=server.general,
        user_id=server.you,
        stdin=Typed(lines) if typed else io.StringIO(lines),
        stdout=out,
    )
    return out.getvalue()


async def test_as_another_member_in_another_channel(server: Server) -> None:
    text = await session(
        server,
        [
            "/whoami",
            ":as Bob",
            "/whoami",
            "/config",
            ":in #reflections",
            "/whoami",
            "/share text:hello",
            ":as you",
            "/config",
        ],
    )
    assert "│ you in #general" in text
    assert "✓ You are now bob, an ordinary member of the server (no Manage Server)." in text
    assert "│ bob in #general" in text
    assert "✗ /config is for members with Manage Server (its default_member_permissions)" in text
    assert "✓ Commands now run in #reflections." in text
    assert "│ bob in #reflections" in text
    # The bot's post arrives under its channel's name, its DM to bob as a DM.
    assert "\n#reflections\n┌ Crossroads\n│ Shared: hello\n└" in text
    assert "✉ Direct message\n┌ Crossroads\n│ @bob, you shared in #reflections" in text
    assert text.count("Shared: hello") == 1
    assert "✓ You are yourself again." in text
    assert text.rstrip().endswith("│ configured\n└")

    bob = server.guild + 1000 + zlib.crc32(b"bob")  # the same id in every session
    assert [m["content"] for m in server.emu.dm_messages(bob)] == [
        f"<@{bob}>, you shared in <#{server.reflections}>"
    ]


async def test_in_and_channel_list_channels_and_posts_and_old_news_stays_old(
    server: Server,
) -> None:
    await session(server, [":as bob", "/share text:first"])
    text = await session(
        server,
        [
            ":as bob",  # the same member again, in a new session
            ":in",
            ":channel #reflections",
            ":channel",
            ":in #Archive",
            ":in #nowhere",
            ":in Lounge",
            "/whoami",
        ],
    )
    assert "Shared: first" in text  # listed by :channel ...
    assert "#reflections\n┌" not in text  # ... but never shown as news: it is from before
    assert "✉" not in text
    assert (
        "→ #general (text channel)\n  #reflections (text channel)\n  #Lounge (voice channel)"
        in (text)
    )
    assert "#Archive (category)" not in text  # no commands in a category
    assert "#reflections: 1 post\n┌ Crossroads\n│ Shared: first" in text
    assert "(no posts in #general yet)" in text
    assert "✗ there is no channel #Archive to be in" in text
    assert "✗ there is no channel #nowhere to be in" in text
    assert "│ bob in #Lounge" in text
    assert server.emu.violations == []


async def test_bad_member_names_get_one_clear_line(server: Server) -> None:
    text = await session(server, [":as", ":as a", ":as bob smith", "/whoami"])
    assert text.count("✗ say who to be, e.g. :as bob") == 3
    assert "│ you in #general" in text


async def test_the_prompt_says_who_and_where_once_that_changes(server: Server) -> None:
    text = await session(
        server, [":in #reflections", ":as bob", ":in #general", ":as you"], typed=True
    )
    prompts = [line.split("✓")[0] for line in text.splitlines() if "✓" in line]
    assert prompts == ["> ", "#reflections> ", "bob #reflections> ", "bob> "]
    assert text.endswith("> ")  # yourself where you started: the plain prompt again


async def test_a_rule_the_bot_breaks_is_shown_at_once(server: Server) -> None:
    """Scripted or typed, a developer sees what Discord would have refused, even when the bot
    hides it (the sandbox subprocess test in tests/test_cli.py relies on this line)."""
    text = await session(server, ["/sloppy", "/whoami"])
    warning = "⚠ The bot broke Discord's rules (limits): POST /channels/"
    assert warning in text and "content" in text.split(warning)[1]
    assert text.index(warning) < text.index("│ you in #general")  # before the next command
    assert text.count("⚠") == 1
    assert [v.rule for v in server.emu.violations] == ["limits"]


def test_posts_and_channels_render_without_a_bot() -> None:
    post = {"id": "1", "author": {"username": "Crossroads"}, "content": "**Weekly** reflection"}
    assert render_post(post, "reflections") == (
        "#reflections\n┌ Crossroads\n│ Weekly reflection\n└"
    )
    many = [{**post, "id": str(i), "content": f"post {i}"} for i in range(12)]
    listed = render_channel("reflections", many)
    assert listed.startswith("#reflections: the last 10 of 12 posts\n┌ Crossroads\n│ post 2")
    assert "post 1\n" not in listed and listed.endswith("│ post 11\n└")
    assert render_channel("general", []) == "(no posts in #general yet)"
    assert render_channel("general", many[:2]).startswith("#general: 2 posts\n┌ Crossroads")
    channels = [{"id": "1", "name": "general", "type": 0}, {"id": "2", "name": "Lounge", "type": 2}]
    assert render_channels(channels, 2) == "  #general (text channel)\n→ #Lounge (voice channel)"
