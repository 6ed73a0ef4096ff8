"""The emulator, driven by a real (tiny) discord.py bot over real HTTP and websocket.

Good behaviour must produce no violations; each deliberate misbehaviour must produce exactly the
violation (and the Discord-style error) it deserves.

discord.py only logs what a handler raises, so the bot's handlers assert nothing: they note what
they saw (``notes``) for the test to check, and anything they raise lands in ``failures``, which
fails the test (see tests/sandbox/clients.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from sandbox import Emulator, point_discord_at
from tests.sandbox.clients import KeepsFailures, Recorded, failures_of

LATE_DEADLINE = 0.3


class Counter(Recorded, discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.count = 0

    @discord.ui.button(label="Add", custom_id="add")
    async def add(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.count += 1
        await interaction.response.edit_message(content=f"count {self.count}", view=self)

    @discord.ui.button(label="Off", custom_id="off", disabled=True)
    async def off(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        raise AssertionError("a disabled button cannot be pressed")


class Menu(Recorded, discord.ui.View):
    @discord.ui.select(
        custom_id="menu",
        max_values=2,
        options=[
            discord.SelectOption(label=x.title(), value=x) for x in ("tea", "coffee", "water")
        ],
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select[Any]) -> None:
        await interaction.response.defer()  # type 6: nothing visible yet
        await interaction.edit_original_response(content=f"picked {', '.join(select.values)}")


class Feedback(Recorded, discord.ui.Modal, title="Feedback"):
    mood: discord.ui.Label[Any] = discord.ui.Label(
        text="Mood",
        component=discord.ui.Select(
            custom_id="mood",
            options=[
                discord.SelectOption(label="Good", value="good"),
                discord.SelectOption(label="Bad", value="bad"),
            ],
        ),
    )
    note: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="Note", custom_id="note", max_length=20
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        select = self.mood.component
        assert isinstance(select, discord.ui.Select)
        await interaction.response.send_message(
            f"{select.values[0]}: {self.note.value}", ephemeral=True
        )


class SandboxBot(KeepsFailures, commands.Bot):
    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        self.errors: asyncio.Queue[Exception] = asyncio.Queue()
        # (what, value) a handler saw after answering, for the test to check.
        self.notes: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        add_commands(self)

        @self.tree.error
        async def failed(interaction: discord.Interaction, error: Exception) -> None:
            failures_of(self).append(error)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits 5 s before re-identifying; the emulator has no identify rate limit.
        return None

    async def attempt(self, call: Callable[[], Any]) -> None:
        """Run a request the test expects Discord to reject, keeping the error for the test."""
        try:
            await call()
        except discord.HTTPException as error:
            await self.errors.put(error)


def add_commands(bot: SandboxBot) -> None:
    tree = bot.tree
    demo = app_commands.Group(name="demo", description="Demo commands")

    @demo.command(name="echo", description="Echo text back")
    @app_commands.describe(text="What to say", times="How often", loud="Shout", where="A channel")
    async def echo(
        interaction: discord.Interaction,
        text: str,
        times: app_commands.Range[int, 1, 5] = 1,
        loud: bool = False,
        where: discord.TextChannel | None = None,
    ) -> None:
        out = " ".join([text.upper() if loud else text] * times) or "(nothing)"
        if where is not None:
            out += f" in #{where.name}"
        await interaction.response.send_message(out, ephemeral=True)

    tree.add_command(demo)

    @tree.command(name="counter", description="A message with buttons")
    async def counter(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("count 0", view=Counter())

    @tree.command(name="feedback", description="Opens a modal")
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Feedback())

    @tree.command(name="fruit", description="Autocompleted")
    @app_commands.describe(name="A fruit")
    async def fruit(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(name, ephemeral=True)

    @fruit.autocomplete("name")
    async def fruit_names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = ["apple", "apricot", "banana"]
        return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]

    @tree.command(name="think", description="Defers, then follows up")
    async def think(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send("done thinking")

    @tree.command(name="menu", description="A message with a select")
    async def menu(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pick drinks", view=Menu())

    @tree.command(name="slowedit", description="Defers, then edits the original")
    async def slowedit(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True)
        await interaction.edit_original_response(content="edited", view=Counter())
        original = await interaction.original_response()
        await bot.notes.put(("original", original.content))

    @tree.command(name="late", description="Answers after the deadline")
    async def late(interaction: discord.Interaction) -> None:
        await asyncio.sleep(LATE_DEADLINE + 0.2)
        await bot.attempt(lambda: interaction.response.send_message("too late"))

    @tree.command(name="double", description="Answers twice")
    async def double(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("once")
        interaction.response._response_type = None  # make discord.py send the second one
        await bot.attempt(lambda: interaction.response.send_message("twice"))

    @tree.command(name="long", description="Too much content")
    async def long(interaction: discord.Interaction) -> None:
        await bot.attempt(lambda: interaction.response.send_message("x" * 2001))

    @tree.command(name="bigembed", description="Too much embed text")
    async def bigembed(interaction: discord.Interaction) -> None:
        embeds = [discord.Embed(title="t", description="d" * 4000) for _ in range(2)]
        await bot.attempt(lambda: interaction.response.send_message(embeds=embeds))

    @tree.command(name="dm", description="DMs you twice with one nonce")
    async def dm(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("check your DMs", ephemeral=True)
        user = await bot.fetch_user(interaction.user.id)
        first = await user.send("hello", nonce="check-in-1")
        second = await user.send("hello", nonce="check-in-1")
        await bot.notes.put(("same message", first.id == second.id))

    @tree.command(name="bigfile", description="Sends a file one byte over the upload limit")
    async def bigfile(interaction: discord.Interaction) -> None:
        data = __import__("io").BytesIO(b"x" * (interaction.filesize_limit + 1))
        file = discord.File(data, filename="big.bin")
        await bot.attempt(lambda: interaction.response.send_message(file=file))

    @tree.command(name="export", description="Sends a file")
    async def export(interaction: discord.Interaction) -> None:
        file = discord.File(__import__("io").BytesIO(b'{"a": 1}'), filename="export.json")
        await interaction.response.send_message("your data", file=file, ephemeral=True)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    emulator = Emulator(response_deadline=LATE_DEADLINE)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def world(emu: Emulator) -> dict[str, int]:
    guild = emu.add_guild("Test Server")
    channel = emu.add_text_channel(guild, "general")
    other = emu.add_text_channel(guild, "announcements")
    user = emu.add_user("ada")
    emu.add_member(guild, user)
    return {"guild": guild, "channel": channel, "other": other, "user": user}


@pytest.fixture
async def bot(emu: Emulator, world: dict[str, int]) -> AsyncIterator[SandboxBot]:
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    point_discord_at(emu.api_base, emu.gateway_url)
    client = SandboxBot()
    await client.login("test-token")
    runner = asyncio.create_task(client.connect())
    await emu.wait_until_ready()
    await client.tree.sync()
    yield client
    await client.close()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    discord.http.Route.BASE = saved[0]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(saved[1])
    assert failures_of(client) == [], f"a handler raised: {failures_of(client)!r}"


def rules(emu: Emulator) -> list[str]:
    return [v.rule for v in emu.violations]


async def next_error(bot: SandboxBot) -> discord.HTTPException:
    error = await asyncio.wait_for(bot.errors.get(), 5)
    assert isinstance(error, discord.HTTPException)
    return error


async def next_note(bot: SandboxBot) -> tuple[str, object]:
    return await asyncio.wait_for(bot.notes.get(), 5)


async def test_sync_registers_commands_with_ids(emu: Emulator, bot: SandboxBot) -> None:
    commands_ = {c["name"]: c for c in emu.registered_commands()}
    assert {"demo", "counter", "feedback", "fruit"} <= set(commands_)
    assert commands_["demo"]["options"][0]["name"] == "echo"
    assert all(
        c["id"] and c["application_id"] == str(emu.application_id) for c in commands_.values()
    )
    assert emu.validating
    assert emu.violations == []


async def test_slash_with_subcommand_and_options(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    interaction = await emu.slash(
        world["user"],
        "demo echo",
        options={"text": "hi", "times": "2", "loud": "true", "where": world["other"]},
        guild_id=world["guild"],
    )
    message = await interaction.message()
    assert message["content"] == "HI HI in #announcements"
    assert interaction.is_ephemeral()
    assert interaction.callbacks[0]["type"] == 4
    assert emu.channel_messages(world["channel"]) == []  # ephemeral replies are not public
    assert emu.violations == []


async def test_slash_rejects_what_a_client_could_not_send(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    with pytest.raises(LookupError):
        await emu.slash(world["user"], "nope", guild_id=world["guild"])
    with pytest.raises(ValueError, match="unknown option"):
        await emu.slash(
            world["user"], "demo echo", options={"text": "a", "bogus": 1}, guild_id=world["guild"]
        )
    with pytest.raises(ValueError, match="required"):
        await emu.slash(world["user"], "demo echo", guild_id=world["guild"])
    with pytest.raises(ValueError, match="subcommand"):
        await emu.slash(world["user"], "demo", guild_id=world["guild"])
    with pytest.raises(ValueError, match="times"):
        await emu.slash(
            world["user"], "demo echo", options={"text": "a", "times": 0}, guild_id=world["guild"]
        )
    raw = await emu.slash(
        world["user"],
        "demo echo",
        options={"text": "a", "times": 0},
        guild_id=world["guild"],
        enforce_client_limits=False,
    )
    assert (await raw.message())["content"] == "(nothing)"


async def test_buttons_update_the_message(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    interaction = await emu.slash(world["user"], "counter", guild_id=world["guild"])
    message = await interaction.message()
    assert not interaction.is_ephemeral()
    assert [m["content"] for m in emu.channel_messages(world["channel"])] == ["count 0"]
    click = await emu.click(world["user"], message, "add")
    updated = await click.message()
    assert click.callbacks[0]["type"] == 7
    assert updated["id"] == message["id"] and updated["content"] == "count 1"
    with pytest.raises(ValueError, match="disabled"):
        await emu.click(world["user"], message, "off")
    with pytest.raises(LookupError):
        await emu.click(world["user"], message, "missing")
    assert emu.violations == []


async def test_select_then_deferred_update(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    message = await (await emu.slash(world["user"], "menu", guild_id=world["guild"])).message()
    with pytest.raises(ValueError):
        await emu.select(world["user"], message, "menu", ["juice"])
    chosen = await emu.select(world["user"], message, "menu", ["tea", "water"])
    edited = await chosen.message()
    assert chosen.callbacks[0]["type"] == 6
    assert edited["id"] == message["id"] and edited["content"] == "picked tea, water"
    assert emu.violations == []


async def test_defer_then_edit_original(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    interaction = await emu.slash(world["user"], "slowedit", guild_id=world["guild"])
    message = await interaction.message()
    assert message["content"] == "edited" and interaction.is_ephemeral()
    assert message["components"][0]["components"][0]["custom_id"] == "add"
    assert await next_note(bot) == ("original", "edited")  # what GET @original gave the bot
    assert emu.violations == []


async def test_modal_with_label_select_and_text_input(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    interaction = await emu.slash(world["user"], "feedback", guild_id=world["guild"])
    modal = await interaction.modal()
    assert modal["title"] == "Feedback"
    assert [c["type"] for c in modal["components"]] == [18, 1]
    with pytest.raises(ValueError, match="note"):
        await emu.submit_modal(world["user"], modal, {"mood": ["good"], "note": "x" * 21})
    submit = await emu.submit_modal(world["user"], modal, {"mood": ["bad"], "note": "fine"})
    answer = await submit.message()
    assert answer["content"] == "bad: fine"
    assert submit.payload["guild_id"] == str(world["guild"])
    assert emu.violations == []


async def test_autocomplete_returns_choices(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    choices = await emu.autocomplete(
        world["user"], "fruit", focused="name", value="ap", guild_id=world["guild"]
    )
    assert [c["value"] for c in choices] == ["apple", "apricot"]
    assert emu.violations == []


async def test_defer_then_followup_replaces_thinking(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    interaction = await emu.slash(world["user"], "think", guild_id=world["guild"])
    message = await interaction.message()
    assert message["content"] == "done thinking"
    assert interaction.is_ephemeral()
    assert emu.violations == []


async def test_dm_command_and_attachment(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    interaction = await emu.slash(world["user"], "export")  # no guild: from the user's DMs
    assert "user" in interaction.payload and "member" not in interaction.payload
    message = await interaction.message()
    assert message["attachments"][0]["filename"] == "export.json"
    assert emu.attachment_bytes(message, "export.json") == b'{"a": 1}'
    assert emu.requests[-1].files == [{"filename": "export.json", "size": 8}]
    assert emu.violations == []


async def test_nonce_dedupes_dm(emu: Emulator, bot: SandboxBot, world: dict[str, int]) -> None:
    interaction = await emu.slash(world["user"], "dm", guild_id=world["guild"])
    await interaction.message()
    assert await next_note(bot) == ("same message", True)
    assert [m["content"] for m in emu.dm_messages(world["user"])] == ["hello"]
    assert emu.violations == []


async def test_discard_forgets_an_interaction_and_all_it_left(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    """A long benchmark discards each interaction; the emulator must keep none of it."""
    echo = await emu.slash(
        world["user"], "demo echo", options={"text": "hi"}, guild_id=world["guild"]
    )
    await echo.message()
    form = await emu.slash(world["user"], "feedback", guild_id=world["guild"])
    await form.modal()
    export = await emu.slash(world["user"], "export")  # a file, in the DM
    await export.message()
    for interaction in (echo, form, export):
        emu.discard(interaction)
    assert emu.channel_messages(world["channel"]) == []
    assert emu.dm_messages(world["user"]) == []
    world_ = emu._world
    assert world_.messages == {} and world_.attachment_data == {}
    assert emu._interactions == {} and emu._modal_origins == {}
    assert emu.violations == []


async def test_late_response_is_rejected(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    await emu.slash(world["user"], "late", guild_id=world["guild"])
    error = await next_error(bot)
    assert isinstance(error, discord.NotFound) and error.code == 10062
    assert rules(emu) == ["late"]


async def test_lateness_is_judged_from_arrival_not_after_the_emulators_checks(
    emu: Emulator, bot: SandboxBot, world: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator's own work (a schema's first compile, on a loaded machine) must not make a
    prompt answer late: the deadline is met when the answer arrives."""
    validator = emu._validator
    assert validator is not None
    check = validator.validate

    def slow(method: str, template: str, body: Any) -> Any:
        if template.endswith("/callback"):
            time.sleep(LATE_DEADLINE + 0.2)  # blocks the loop, as a compile would
        return check(method, template, body)

    monkeypatch.setattr(validator, "validate", slow)
    interaction = await emu.slash(
        world["user"], "demo echo", options={"text": "prompt"}, guild_id=world["guild"]
    )
    assert (await interaction.message())["content"] == "prompt"
    assert emu.violations == []


async def test_double_ack_is_rejected(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    await emu.slash(world["user"], "double", guild_id=world["guild"])
    error = await next_error(bot)
    assert error.code == 40060
    assert rules(emu) == ["double-ack"]


@pytest.mark.parametrize("command", ["long", "bigembed"])
async def test_limits_are_enforced(
    emu: Emulator, bot: SandboxBot, world: dict[str, int], command: str
) -> None:
    interaction = await emu.slash(world["user"], command, guild_id=world["guild"])
    error = await next_error(bot)
    assert error.status == 400 and error.code == 50035
    assert rules(emu) == ["limits"]
    assert interaction.callbacks == []  # a rejected answer does not acknowledge


async def test_the_upload_limit_is_sent_and_enforced(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    emu.attachment_size_limit = 1024
    interaction = await emu.slash(world["user"], "bigfile", guild_id=world["guild"])
    assert interaction.payload["attachment_size_limit"] == 1024
    error = await next_error(bot)
    assert (error.status, error.code) == (413, 40005)
    assert rules(emu) == ["upload-size"]
    assert interaction.callbacks == []


async def test_schema_invalid_body(emu: Emulator, bot: SandboxBot, world: dict[str, int]) -> None:
    route = discord.http.Route(
        "POST", "/channels/{channel_id}/messages", channel_id=world["channel"]
    )
    with pytest.raises(discord.HTTPException) as caught:
        await bot.http.request(route, json={"content": 5, "tts": "maybe"})
    assert caught.value.code == 50035
    assert rules(emu) == ["schema"]


async def test_a_lone_surrogate_is_refused(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    route = discord.http.Route(
        "POST", "/channels/{channel_id}/messages", channel_id=world["channel"]
    )
    with pytest.raises(discord.HTTPException) as caught:
        await bot.http.request(route, json={"content": "half \ud83d of an emoji"})
    assert (caught.value.status, caught.value.code) == (400, 50109)
    assert rules(emu) == ["lone-surrogate"]
    emu.violations.clear()
    # Both halves of a pair, escaped apart, are one character once parsed: that is fine.
    await bot.http.request(route, json={"content": "a whole one \ud83d\ude00"})
    assert emu.violations == []


async def test_unknown_route_and_bad_token(emu: Emulator, bot: SandboxBot) -> None:
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/nowhere"))
    assert rules(emu) == ["unknown-route"]
    emu.violations.clear()
    rejected = SandboxBot()
    with pytest.raises(discord.LoginFailure):
        await rejected.login("invalid-token")
    await rejected.close()
    assert emu.violations == []


async def test_rate_limit_is_retried(emu: Emulator, bot: SandboxBot, world: dict[str, int]) -> None:
    emu.fail_next("POST", r"/channels/\d+/messages$", status=429, retry_after=0.05)
    channel = bot.get_channel(world["channel"])
    assert isinstance(channel, discord.TextChannel)
    message = await channel.send("after a rate limit")
    statuses = [r.status for r in emu.requests if r.path.endswith("/messages")]
    assert statuses == [429, 200]
    assert emu.channel_messages(world["channel"])[0]["id"] == str(message.id)


async def test_dm_to_unreachable_user(
    emu: Emulator, bot: SandboxBot, world: dict[str, int]
) -> None:
    emu.fail_next("POST", r"/channels/\d+/messages$", status=403, code=50007)
    user = await bot.fetch_user(world["user"])
    with pytest.raises(discord.Forbidden) as caught:
        await user.send("hello")
    assert caught.value.code == 50007
    assert emu.dm_messages(world["user"]) == []


@pytest.mark.parametrize("resumable", [True, False])
async def test_gateway_reconnect(
    emu: Emulator, bot: SandboxBot, world: dict[str, int], resumable: bool
) -> None:
    await emu.disconnect_gateway(resumable=resumable)
    await emu.wait_until_ready()
    interaction = await emu.slash(
        world["user"], "demo echo", options={"text": "back"}, guild_id=world["guild"]
    )
    assert (await interaction.message())["content"] == "back"
    assert emu.violations == []


async def test_guild_added_later_is_dispatched(emu: Emulator, bot: SandboxBot) -> None:
    guild_id = emu.add_guild("Second")
    emu.add_text_channel(guild_id, "lobby")
    for _ in range(200):
        guild = bot.get_guild(guild_id)
        if guild is not None and guild.text_channels:
            break
        await asyncio.sleep(0.01)
    assert guild is not None and [c.name for c in guild.text_channels] == ["lobby"]


async def test_a_missing_spec_turns_validation_off_with_one_warning(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    emulator = Emulator(spec_path=tmp_path / "missing.json")
    await emulator.start()
    try:
        assert not emulator.validating
        warnings = [r for r in caplog.records if "NOT validated" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    finally:
        await emulator.stop()
        await emulator.stop()  # idempotent


async def test_no_spec_asked_for_is_validation_off_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = Emulator(spec_path=None)
    await emulator.start()
    try:
        assert not emulator.validating
        assert not [r for r in caplog.records if r.levelname == "WARNING"]
    finally:
        await emulator.stop()
