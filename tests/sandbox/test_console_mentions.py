"""The console talking to the bot in a server: ``@Crossroads <text>`` posts a message that
mentions the bot, whose public answer shows as it arrives; and option values with spaces, read
as Discord's client reads them. Against the real emulator and a small discord.py bot that hears
server messages without the Message Content intent, as Crossroads does.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import discord
import pytest
from discord import app_commands

from sandbox import Emulator, console
from sandbox.console import run_console
from tests.sandbox.clients import KeepsFailures, command_tree, pointed_emulator, running


class Bot(KeepsFailures, discord.Client):
    """Answers a mention with a reply that pings nobody (unless told to stay quiet), and
    /decide with what it was given."""

    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = intents.guild_messages = intents.dm_messages = True
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.tree = command_tree(self)

        @self.tree.command(name="decide", description="Where you stand today")
        @app_commands.choices(
            leaning=[app_commands.Choice(name=n, value=n) for n in ("yes", "leaning yes", "no")]
        )
        async def decide(
            interaction: discord.Interaction, leaning: app_commands.Choice[str], why: str = ""
        ) -> None:
            await interaction.response.send_message(
                f"Recorded: {leaning.value} ({why or 'no reason'})", ephemeral=True
            )

    async def on_message(self, message: discord.Message) -> None:
        assert self.user is not None
        if message.author.bot:
            return
        if message.guild is None:  # a DM: echoed, so the console's DM shows
            await message.channel.send(f"You wrote: {message.content}")
            return
        if self.user not in message.mentions:
            return
        text = message.content.split(">", 1)[1].strip()
        if text != "stay quiet":
            await message.reply(
                f"You asked: **{text}**", allowed_mentions=discord.AllowedMentions.none()
            )


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
        you = emu.add_user("you")
        emu.add_member(guild, you)
        async with running(Bot()) as bot:
            await bot.tree.sync()
            yield Server(emu, guild, general, reflections, you)


async def session(server: Server, script: list[str]) -> str:
    out = io.StringIO()
    await run_console(
        server.emu,
        guild_id=server.guild,
        channel_id=server.general,
        user_id=server.you,
        stdin=io.StringIO("".join(line + "\n" for line in script)),
        stdout=out,
    )
    return out.getvalue()


async def test_a_mention_posts_in_the_channel_and_the_answer_shows(server: Server) -> None:
    text = await session(
        server,
        [
            "@Crossroads should I become a researcher?",
            ":in #reflections",
            "@bot what about money?",
            "@crossroads stay quiet",
            "@Crossroads",
        ],
    )
    bot = server.emu.bot_user_id
    assert (
        "#general\n┌ Crossroads\n│ ↪ you: @Crossroads should I become a researcher?\n"
        "│ You asked: should I become a researcher?\n└"
    ) in text
    assert "#reflections\n┌ Crossroads\n│ ↪ you: @Crossroads what about money?" in text
    assert text.count("You asked:") == 2  # each answer once, never the member's own post
    assert "(the bot has not answered)" in text  # to "stay quiet"
    assert "✗ say what to write, e.g. @Crossroads" in text

    general = server.emu.channel_messages(server.general)
    assert [m["content"] for m in general] == [
        f"<@{bot}> should I become a researcher?",
        "You asked: **should I become a researcher?**",
    ]
    assert general[1]["message_reference"]["message_id"] == general[0]["id"]
    assert general[1]["mentions"] == []  # the answer pings nobody
    reflections = server.emu.channel_messages(server.reflections)
    assert reflections[0]["content"] == f"<@{bot}> what about money?"
    assert server.emu.violations == []


async def test_option_values_may_hold_spaces(server: Server) -> None:
    text = await session(
        server,
        [
            "/decide leaning:leaning yes why:Impact matters more than pay",
            '/decide why:"why: because" leaning:no',
            "/decide leaning:yes why:note: money matters",
        ],
    )
    assert "│ Recorded: leaning yes (Impact matters more than pay)" in text
    assert "│ Recorded: no (why: because)" in text
    assert "│ Recorded: yes (note: money matters)" in text


async def test_help_names_the_mention_and_plain_words_go_to_the_bot(server: Server) -> None:
    text = await session(server, ["help", "hello there", "money worries me"])
    assert "@Crossroads <text>  post <text> in the current channel mentioning the bot" in text
    # A line that is no command is what a newcomer types first: it is a DM to the bot.
    assert "✗" not in text
    assert "│ You wrote: hello there" in text and "│ You wrote: money worries me" in text
    assert len(server.emu.dm_messages(server.you)) == 4  # two from you, two answers
