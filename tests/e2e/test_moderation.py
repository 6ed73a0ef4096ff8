"""Moderators end to end: /config and its audit trail, /share, /stats, restrict, leaving a server.

The real bot over real HTTP and websocket to the emulator, which enforces Discord's own rules:
`default_member_permissions` and `contexts` when a member invokes a command, the bot's channel
permissions when it posts. Each test ends with zero violations (the fixture checks).
"""

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from db.guild_settings import recent_changes, server_settings
from db.journal import marks
from db.models import CheckinPlan, ConfigChange, GuildMember, Reflection, WeeklyPost
from tests.e2e.conftest import World, answer, text_of

MANAGE_GUILD = 1 << 5
SEND_MESSAGES, EMBED_LINKS, VIEW_CHANNEL = 1 << 11, 1 << 14, 1 << 10
GUILD_VOICE = 2
T = TypeVar("T")


def command(world: World, name: str) -> dict[str, Any]:
    [found] = [c for c in world.emulator.registered_commands() if c["name"] == name]
    return found


async def audit(world: World) -> list[tuple[str, str, str, int | None]]:
    async with world.database.read() as session:
        rows = await recent_changes(session, world.guild_id, limit=100)
    return [(r.setting, r.old_value, r.new_value, r.moderator_id) for r in reversed(rows)]


async def reflect(world: World, user_id: int, point: str, text: str) -> int:
    """A reflection written through /reflect in the test server; its entry id."""
    modal = await (await world.slash(user_id, "reflect", point=point)).modal()
    saved = await world.emulator.submit_modal(user_id, modal, {"text": text})
    assert "Saved" in (await saved.message())["content"]
    async with world.database.read() as session:
        return max(m.id for m in await marks(session, user_id=user_id))


async def seen_by_bot(world: World, event: str, change: Callable[[], T]) -> T:
    """Make a change in the emulator and wait until the bot's cache has the gateway event."""
    waiter = asyncio.ensure_future(world.bot.wait_for(event, timeout=5))
    result = change()
    await waiter
    return result


async def configure_channel(world: World) -> None:
    await answer(world, world.moderator, "config channel", channel=world.channel_id)


# --- the command contract ------------------------------------------------------------------------


async def test_moderator_commands_are_guild_only_and_need_manage_server(world: World) -> None:
    for name in ("config", "stats"):
        registered = command(world, name)
        assert registered["contexts"] == [0], name
        assert registered.get("dm_permission") is False, name
        assert registered["default_member_permissions"] == str(MANAGE_GUILD), name
    assert command(world, "share")["contexts"] == [0]
    [channel_option] = next(
        o["options"] for o in command(world, "config")["options"] if o["name"] == "channel"
    )
    assert sorted(channel_option["channel_types"]) == [0, 5]  # text and announcement


async def test_discord_hides_config_from_members_without_manage_server(world: World) -> None:
    with pytest.raises(PermissionError):
        await world.slash(world.alice, "config show")


async def test_the_bot_checks_permission_itself_when_a_server_lets_anyone_in(
    world: World,
) -> None:
    world.emulator.allow_command(world.guild_id, "config", world.alice)  # a server override
    world.emulator.allow_command(world.guild_id, "stats", world.alice)
    for line, options in (
        ("config channel", {"channel": world.channel_id}),
        ("config restrict", {"enabled": True}),
        ("config reset", {}),
        ("config show", {}),
        ("stats", {}),
    ):
        message = await answer(world, world.alice, line, **options)
        assert "Manage Server" in message["content"], line
    assert await audit(world) == []
    async with world.database.read() as session:
        assert (await server_settings(session, world.guild_id)).channel_id is None


async def test_server_commands_from_a_dm_are_refused_clearly(world: World) -> None:
    with pytest.raises(PermissionError):  # Discord's client does not offer them there
        await world.emulator.slash(world.moderator, "config show")
    for line, options in (("config show", {}), ("stats", {}), ("share", {"entry": "1"})):
        interaction = await world.emulator.slash(  # an outdated or forged client
            world.moderator, line, options=options, enforce_client_limits=False
        )
        assert "inside a server" in (await interaction.message())["content"], line
        assert interaction.is_ephemeral()


# --- each subcommand and its audit row -----------------------------------------------------------


async def test_each_config_subcommand_changes_one_setting_and_leaves_an_audit_row(
    world_any_db: World,
) -> None:
    world = world_any_db
    mod = world.moderator
    reply = await answer(world, mod, "config channel", channel=world.channel_id)
    assert f"<#{world.channel_id}>" in reply["content"]
    await answer(world, mod, "config checkins", enabled=False)
    await answer(
        world, mod, "config weekly-post", enabled=True, weekday=2, hour=9, timezone="Europe/Berlin"
    )
    await answer(world, mod, "config restrict", enabled=True)
    again = await answer(world, mod, "config restrict", enabled=True)
    assert "already" in again["content"]
    assert await audit(world) == [
        ("channel", "not set", f"<#{world.channel_id}>", mod),
        ("checkins", "allowed", "not allowed", mod),
        (
            "weekly-post",
            "off, Mondays at 17:00 (UTC)",
            "on, Wednesdays at 09:00 (Europe/Berlin)",
            mod,
        ),
        ("restrict", "off", "on", mod),
    ]
    shown = text_of(await answer(world, mod, "config show"))
    assert f"<#{world.channel_id}>" in shown and "Wednesdays at 09:00" in shown
    assert "not allowed" in shown and f"<@{mod}>" in shown
    assert shown.count("→") == 4  # the last changes, newest first, with Discord timestamps
    assert "<t:" in shown

    reset = await answer(world, mod, "config reset")
    assert "Back to the defaults" in reset["content"]
    trail = await audit(world)
    assert len(trail) == 8 and {row[0] for row in trail[4:]} == {
        "channel",
        "checkins",
        "weekly-post",
        "restrict",
    }
    shown = text_of(await answer(world, mod, "config show"))
    assert shown.count("→") == 5  # only the last five


async def test_the_channel_must_be_one_the_bot_can_post_in(world: World) -> None:
    emulator, mod = world.emulator, world.moderator
    locked = await seen_by_bot(
        world, "guild_channel_create", lambda: emulator.add_channel(world.guild_id, "locked")
    )
    bot_id = emulator.application_id
    await seen_by_bot(
        world,
        "guild_channel_update",
        lambda: emulator.set_permissions(locked, bot_id, deny=SEND_MESSAGES | EMBED_LINKS),
    )
    message = await answer(world, mod, "config channel", channel=locked)
    assert "Send Messages, Embed Links" in message["content"]
    hidden = await seen_by_bot(
        world, "guild_channel_create", lambda: emulator.add_channel(world.guild_id, "hidden")
    )
    await seen_by_bot(
        world,
        "guild_channel_update",
        lambda: emulator.set_permissions(hidden, bot_id, deny=VIEW_CHANNEL),
    )
    message = await answer(world, mod, "config channel", channel=hidden)
    assert "View Channel" in message["content"]
    assert await audit(world) == []


async def test_a_voice_channel_or_another_servers_channel_is_refused(world: World) -> None:
    emulator, mod = world.emulator, world.moderator
    voice = await seen_by_bot(
        world,
        "guild_channel_create",
        lambda: emulator.add_channel(world.guild_id, "Lounge", type=GUILD_VOICE),
    )
    other_guild = emulator.add_guild("Elsewhere")
    elsewhere = await seen_by_bot(
        world, "guild_channel_create", lambda: emulator.add_channel(other_guild, "general")
    )
    for channel in (voice, elsewhere):
        interaction = await world.slash(
            mod, "config channel", channel=channel, enforce_client_limits=False
        )
        message = await interaction.message()
        assert interaction.is_ephemeral()
        assert "text or announcement channel" in message["content"], message
    assert await audit(world) == []


async def test_weekly_post_input_out_of_range_gets_a_clear_answer(world: World) -> None:
    await configure_channel(world)
    for options, expected in (
        ({"hour": 24}, "0 to 23"),
        ({"weekday": 9}, "weekday"),
        ({"timezone": "Mars/Olympus_Mons"}, "isn't a time zone I know"),
    ):
        interaction = await world.slash(
            world.moderator,
            "config weekly-post",
            enforce_client_limits=False,
            enabled=True,
            **options,
        )
        assert expected in (await interaction.message())["content"], options
    assert [row[0] for row in await audit(world)] == ["channel"]


async def test_the_weekly_post_needs_a_channel_first(world: World) -> None:
    message = await answer(world, world.moderator, "config weekly-post", enabled=True)
    assert "/config channel" in message["content"]
    assert await audit(world) == []


async def test_timezone_autocomplete_for_the_weekly_post(world: World) -> None:
    choices = await world.emulator.autocomplete(
        world.moderator,
        "config weekly-post",
        focused="timezone",
        value="new york",
        options={"enabled": True},
        guild_id=world.guild_id,
    )
    assert "America/New_York" in [c["value"] for c in choices]


# --- check-ins per server ------------------------------------------------------------------------


async def test_checkins_off_refuses_start_here_but_keeps_existing_plans(world: World) -> None:
    await answer(world, world.alice, "checkin start")
    await answer(world, world.moderator, "config checkins", enabled=False)
    refused = await answer(world, world.bob, "checkin start")
    assert "turned check-ins off here" in refused["content"]
    async with world.database.read() as session:
        assert (await session.get(CheckinPlan, world.alice)).status == "active"  # type: ignore[union-attr]
        assert await session.get(CheckinPlan, world.bob) is None
    from_dm = await (await world.dm_slash(world.bob, "checkin start")).message()
    assert "Check-ins are on" in from_dm["content"]


# --- /share --------------------------------------------------------------------------------------


async def test_share_previews_then_posts_once_and_pings_nobody(world_any_db: World) -> None:
    world = world_any_db
    await configure_channel(world)
    text = f"@everyone and <@&1> and <@{world.bob}>: building my own outlet."
    entry = await reflect(world, world.alice, "fame", text)
    preview_ix = await world.slash(world.alice, "share", entry=str(entry))
    preview = await preview_ix.message()
    assert preview_ix.is_ephemeral()
    assert world.emulator.channel_messages(world.channel_id) == []  # nothing before confirming
    assert text in text_of(preview)
    share_id = f"cr:share-post:{world.alice}:{entry}"
    stranger = await world.emulator.click(world.bob, preview, share_id)
    assert "someone else" in (await stranger.message())["content"]
    done = await world.emulator.click(world.alice, preview, share_id)
    await done.answered()
    again = await world.emulator.click(world.alice, preview, share_id)  # a double press
    await again.answered()
    [post] = world.emulator.channel_messages(world.channel_id)
    assert text in text_of(post)
    assert post["embeds"][0]["author"]["name"] == "alice shared a reflection"
    assert post["mention_everyone"] is False and post["mentions"] == []
    [body] = [
        r.json
        for r in world.emulator.requests
        if r.method == "POST" and r.path == f"/channels/{world.channel_id}/messages"
    ][:1]
    assert body["allowed_mentions"] == {"parse": []}


async def test_share_refusals_are_clear_and_post_nothing(world: World) -> None:
    entry = await reflect(world, world.alice, "money", "Enough is enough.")
    no_channel = await answer(world, world.alice, "share", entry=str(entry))
    assert "/config channel" in no_channel["content"]
    await configure_channel(world)
    not_yours = await answer(world, world.bob, "share", entry=str(entry))
    assert "not found" in not_yours["content"]
    preview = await answer(world, world.alice, "share", entry=str(entry))
    await answer(world, world.alice, "journal delete", entry=str(entry))
    async with world.database.transaction() as session:
        await session.execute(Reflection.__table__.delete().where(Reflection.id == entry))
    gone = await world.emulator.click(world.alice, preview, f"cr:share-post:{world.alice}:{entry}")
    assert "not found" in text_of(await gone.message())
    assert world.emulator.channel_messages(world.channel_id) == []


async def test_restrict_keeps_share_in_the_channel_and_private_commands_anywhere(
    world: World,
) -> None:
    elsewhere = await seen_by_bot(
        world, "guild_channel_create", lambda: world.emulator.add_channel(world.guild_id, "random")
    )
    await configure_channel(world)
    await answer(world, world.moderator, "config restrict", enabled=True)
    entry = await reflect(world, world.alice, "purpose", "Why I want to do this.")
    pointer = await world.emulator.slash(
        world.alice,
        "share",
        options={"entry": str(entry)},
        guild_id=world.guild_id,
        channel_id=elsewhere,
    )
    assert f"<#{world.channel_id}>" in (await pointer.message())["content"]
    assert pointer.is_ephemeral()
    private = await world.emulator.slash(
        world.alice, "journal list", guild_id=world.guild_id, channel_id=elsewhere
    )
    assert "Why I want to do this." in text_of(await private.message())
    preview = await answer(world, world.alice, "share", entry=str(entry))  # in the channel
    await (
        await world.emulator.click(world.alice, preview, f"cr:share-post:{world.alice}:{entry}")
    ).answered()
    assert len(world.emulator.channel_messages(world.channel_id)) == 1


# --- /stats --------------------------------------------------------------------------------------


async def test_stats_show_counts_only_and_hide_counts_under_five(world_any_db: World) -> None:
    world = world_any_db
    members = [world.alice, world.bob]
    for n in range(4):
        member = world.emulator.add_user(f"member{n}")
        world.emulator.add_member(world.guild_id, member)
        members.append(member)
    for member in members:  # six reflect on purpose; two on money
        await reflect(world, member, "purpose", f"secret words of {member}")
    for member in members[:2]:
        await reflect(world, member, "money", "money words")
        await answer(world, member, "decide", leaning="yes")
    shown = text_of(await answer(world, world.moderator, "stats"))
    assert "**6** members" in shown
    lines = {line.split(":")[0].strip(): line for line in shown.splitlines() if ": **" in line}
    purpose = next(v for k, v in lines.items() if k.startswith("1."))
    money = next(v for k, v in lines.items() if k.startswith("4."))
    assert purpose.endswith("**6**") and money.endswith("**fewer than 5**")
    assert "Yes: **fewer than 5**" in shown and "No: **0**" in shown
    assert "secret" not in shown and "alice" not in shown and "money words" not in shown
    dm_only = world.emulator.add_user("dm-only")
    await world.dm_slash(dm_only, "decide", leaning="no")  # never used the bot in the server
    async with world.database.read() as session:
        counted = await session.scalar(
            select(func.count())
            .select_from(GuildMember)
            .where(GuildMember.guild_id == world.guild_id)
        )
    assert counted == 6


# --- leaving a server ----------------------------------------------------------------------------


async def test_leaving_a_server_forgets_it_and_keeps_members_entries(world_any_db: World) -> None:
    world = world_any_db
    await configure_channel(world)
    await answer(world, world.moderator, "config weekly-post", enabled=True)
    await reflect(world, world.alice, "purpose", "Mine to keep.")
    await seen_by_bot(
        world, "server_forgotten", lambda: world.emulator.remove_guild(world.guild_id)
    )
    async with world.database.read() as session:
        for model in (ConfigChange, GuildMember, WeeklyPost):
            rows = await session.scalar(
                select(func.count()).select_from(model).where(model.guild_id == world.guild_id)
            )
            assert rows == 0, model
        assert (await server_settings(session, world.guild_id)).channel_id is None
    async with world.database.read() as session:
        assert [m.point for m in await marks(session, user_id=world.alice)] == ["purpose"]
