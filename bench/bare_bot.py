"""The baseline of the end-to-end benchmarks: the least a discord.py bot can do for each command
Crossroads is measured on, in its own process.

Run as ``python bench/bare_bot.py`` with ``DISCORD_TOKEN`` and ``DISCORD_EMULATOR_URL`` set, as
Crossroads is run; it reaches the emulator the way ``bot.py`` does (``sandbox.redirect``, so both
processes import the same) and imports nothing else of Crossroads. Same
intents as Crossroads (guilds, DMs), same command shapes, answers that skip all the work:

* ``/advice purpose``: "ok", privately;
* ``/reflect point:<text>``: a form like Crossroads' (a paragraph input ``text``, a 1-5 select
  ``comfort``); its submit is answered "saved", privately;
* ``/journal list``: "page 0" with a Next button (``page:1``); a ``page:<n>`` button edits the
  message to "page <n>";
* ``/progress``: deferred, then the placeholder is replaced by a fixed 40 KB file named
  ``progress.png`` (about a chart's size);
* with ``--echo-dms`` (bench/chat.py), each DM a person writes: answered in the DM, once,
  with a fixed answer of Crossroads' size and shape (a line of content; an embed with a
  title, ~700 characters of text and a field; three buttons and a select of six options,
  their custom ids naming the member and the message; no mentions; a nonce from the
  message's id, enforced): what Discord carries for a conversation answer, without choosing
  it. Without the flag DMs go unanswered.

It logs "bare bot ready" once discord.py fired on_ready, and stops on SIGTERM.
"""

import argparse
import asyncio
import io
import os
import signal
import sys
from pathlib import Path

import discord
from discord import app_commands

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.redirect import point_discord_at

CHART_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(40_000)

# The DM answer: Crossroads' conversation answer's size (an essay point of up to 700
# characters, a question, three buttons, the six points to pick from), fixed.
ECHO_CONTENT = 'That sounds like **A point of the essay** (you mentioned "a few words").'
ECHO_TITLE = "1. 🧭 A point of the essay"
ECHO_TEXT = ("> " + "A sentence of the essay, quoted as the answer quotes it. " * 13)[:699] + "…"
ECHO_QUESTION = (
    "A question to think about, as long as the essay's prompts are: what would you write "
    "down if nobody else were ever going to read it?"
)
ECHO_OPTIONS = (
    "Know why you want it",
    "Who decides what you work on",
    "Science takes decades",
    "Less money, longer horizon",
    "Fame is not the measure",
    "Out of the spotlight",
)


def _echo_answer(member: int, message: int) -> tuple[discord.Embed, discord.ui.View]:
    embed = discord.Embed(title=ECHO_TITLE, description=ECHO_TEXT, colour=0x5865F2)
    embed.add_field(name="Think about", value=ECHO_QUESTION, inline=False)
    view = discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(
            label="Keep as my reflection: A point",
            emoji="📌",
            style=discord.ButtonStyle.primary,
            custom_id=f"echo-keep:{member}:point:{message}",
        )
    )
    view.add_item(discord.ui.Button(label="Reflect", emoji="✍️", custom_id="echo-reflect:point"))
    view.add_item(
        discord.ui.Button(
            label="Another question",
            style=discord.ButtonStyle.secondary,
            custom_id=f"echo-more:{member}:point:{message}:1",
        )
    )
    view.add_item(
        discord.ui.Select(
            custom_id=f"echo-pick:{member}:{message}",
            placeholder="Other points: pick one to read",
            options=[
                discord.SelectOption(label=label, value=f"point-{n}")
                for n, label in enumerate(ECHO_OPTIONS)
            ],
            row=1,
        )
    )
    view.stop()  # presses are not measured; discord.py need not keep it
    return embed, view


def _modal() -> discord.ui.Modal:
    modal = discord.ui.Modal(title="Reflect", custom_id="bare-reflect")
    modal.add_item(
        discord.ui.Label(
            text="Your reflection",
            component=discord.ui.TextInput(
                custom_id="text", style=discord.TextStyle.paragraph, max_length=4000
            ),
        )
    )
    modal.add_item(
        discord.ui.Label(
            text="How well can you live with this?",
            component=discord.ui.Select(
                custom_id="comfort",
                min_values=0,
                max_values=1,
                required=False,
                options=[discord.SelectOption(label=str(n), value=str(n)) for n in range(1, 6)],
            ),
        )
    )
    modal.stop()  # answered in on_interaction; discord.py need not keep it
    return modal


def _page_view(page: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="Next ▶", custom_id=f"page:{page + 1}"))
    view.stop()  # answered in on_interaction; discord.py need not keep it
    return view


class BareBot(discord.Client):
    def __init__(self, *, echo_dms: bool = False) -> None:
        self.echo_dms = echo_dms
        intents = discord.Intents.none()
        intents.guilds = True
        intents.dm_messages = True
        super().__init__(
            intents=intents,
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            max_messages=None,
        )
        self.tree: app_commands.CommandTree[BareBot] = app_commands.CommandTree(self)

        advice = app_commands.Group(name="advice", description="Baseline group")

        @advice.command(name="purpose", description="Baseline no-op")
        async def purpose(interaction: discord.Interaction[BareBot]) -> None:
            await interaction.response.send_message("ok", ephemeral=True)

        @app_commands.command(name="reflect", description="Baseline form")
        async def reflect(interaction: discord.Interaction[BareBot], point: str) -> None:
            await interaction.response.send_modal(_modal())

        journal = app_commands.Group(name="journal", description="Baseline group")

        @journal.command(name="list", description="Baseline page")
        async def journal_list(interaction: discord.Interaction[BareBot]) -> None:
            await interaction.response.send_message("page 0", view=_page_view(0), ephemeral=True)

        @app_commands.command(name="progress", description="Baseline file")
        async def progress(interaction: discord.Interaction[BareBot]) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            chart = discord.File(io.BytesIO(CHART_BYTES), "progress.png")
            await interaction.edit_original_response(attachments=[chart])

        self.tree.add_command(advice)
        self.tree.add_command(reflect)
        self.tree.add_command(journal)
        self.tree.add_command(progress)

    async def setup_hook(self) -> None:
        await self.tree.sync()  # a fresh emulator knows no commands

    async def on_ready(self) -> None:
        print("bare bot ready", file=sys.stderr, flush=True)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is discord.InteractionType.modal_submit:
            await interaction.response.send_message("saved", ephemeral=True)
        elif interaction.type is discord.InteractionType.component:
            data = interaction.data
            custom_id = data.get("custom_id", "page:0") if data is not None else "page:0"
            page = int(str(custom_id).split(":")[1])
            await interaction.response.edit_message(content=f"page {page}", view=_page_view(page))

    async def on_message(self, message: discord.Message) -> None:
        if not self.echo_dms or message.guild is not None or message.author.bot:
            return
        embed, view = _echo_answer(message.author.id, message.id)
        try:
            await message.channel.send(
                ECHO_CONTENT,
                embed=embed,
                view=view,
                nonce=f"ba-e-{message.id}",  # Discord allows 25 characters
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as error:
            print(f"could not answer a DM: {error}", file=sys.stderr, flush=True)


async def serve(echo_dms: bool) -> None:
    root = os.environ["DISCORD_EMULATOR_URL"].rstrip("/")
    point_discord_at(f"{root}/api/v10", root.replace("http", "ws", 1) + "/gateway")
    bot = BareBot(echo_dms=echo_dms)
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: asyncio.ensure_future(bot.close())
    )
    async with bot:
        await bot.start(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The bare discord.py baseline bot.")
    parser.add_argument("--echo-dms", action="store_true", help="answer each DM (bench/chat.py)")
    asyncio.run(serve(parser.parse_args().echo_dms))
