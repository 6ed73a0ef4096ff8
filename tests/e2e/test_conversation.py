"""Talking to Crossroads in your own words: DMs, mentions in a server, and what is kept.

The real bot through the emulator: every answer must come in time, ping nobody, break none of
Discord's rules, and store nothing a member did not press to keep.
"""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from cogs.chat.fair_use import ANSWERS_PER_WINDOW
from db.journal import marks
from db.models import GuildMember, Reflection
from tests.e2e.conftest import World, answer, text_of

JSON = dict[str, Any]
MONEY_AND_PHD = "should I quit my job to do a PhD? I worry about money, my salary would halve"


def custom_ids(message: JSON) -> list[str]:
    found: list[str] = []
    for row in message.get("components") or []:
        for component in row.get("components") or []:
            if "custom_id" in component:
                found.append(component["custom_id"])
    return found


def route_of(message: JSON, route: str) -> str:
    [custom_id] = [c for c in custom_ids(message) if c.split(":")[1] == route][:1]
    return custom_id


async def dm(world: World, user_id: int, text: str) -> JSON:
    """The member writes to the bot; the bot's answer."""
    sent = await world.emulator.send_dm(user_id, text)
    return await world.emulator.wait_for_message(world.emulator.dm_channel_id(user_id), after=sent)


async def stored_reflections(world: World) -> int:
    async with world.database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Reflection)) or 0)


async def test_a_dm_in_your_own_words_gets_the_point_that_fits_and_keeps_nothing(
    world_any_db: World,
) -> None:
    world = world_any_db
    reply = await dm(world, world.alice, MONEY_AND_PHD)
    words = text_of(reply)
    assert "Less money, longer horizon" in words  # the point, by its title
    assert "you mentioned" in words and "money" in words  # what it matched on
    assert "Think about" in words
    routes = {c.split(":")[1] for c in custom_ids(reply)}
    assert {"chat-keep", "reflect", "chat-more", "chat-pick"} <= routes
    assert await stored_reflections(world) == 0  # conversation is not kept unless asked


async def test_keep_saves_the_message_itself_then_a_rating_once(world_any_db: World) -> None:
    world = world_any_db
    reply = await dm(world, world.alice, MONEY_AND_PHD)
    keep = route_of(reply, "chat-keep")
    kept = await (await world.emulator.click(world.alice, reply, keep)).message()
    assert "Kept your message as a reflection on" in kept["content"]
    async with world.database.read() as session:
        [mark] = await marks(session, user_id=world.alice)
    assert mark.comfort is None
    journal = await answer(world, world.alice, "journal list")
    assert MONEY_AND_PHD in text_of(journal)
    # A second press keeps nothing more.
    again = await world.emulator.click(world.alice, reply, keep)
    assert "already kept" in (await again.message())["content"]
    assert await stored_reflections(world) == 1
    # The rating buttons under it set how well they can live with it.
    four = [c for c in custom_ids(kept) if c.startswith("cr:entry-rate:") and c.endswith(":4")]
    rated = await (await world.emulator.click(world.alice, kept, four[0])).message()
    assert "Rated 4/5" in rated["content"]
    async with world.database.read() as session:
        [mark] = await marks(session, user_id=world.alice)
    assert mark.comfort == 4


async def test_nobody_else_can_keep_or_rate_your_message(world: World) -> None:
    reply = await dm(world, world.alice, MONEY_AND_PHD)
    pressed = await world.emulator.click(world.bob, reply, route_of(reply, "chat-keep"))
    assert "belong to someone else" in (await pressed.message())["content"]
    assert await stored_reflections(world) == 0


async def test_another_question_and_the_other_points(world: World) -> None:
    reply = await dm(world, world.alice, MONEY_AND_PHD)
    first = text_of(reply)
    more = await (
        await world.emulator.click(world.alice, reply, route_of(reply, "chat-more"))
    ).message()
    assert text_of(more) != first and "Think about" in text_of(more)
    picked = await (
        await world.emulator.select(world.alice, more, route_of(more, "chat-pick"), ["fame"])
    ).message()
    assert world.bot.content.point("fame").title in text_of(picked)


@pytest.mark.parametrize("text", ["hi", "what's the weather like?", "thanks!", "lol"])
async def test_when_nothing_fits_the_six_are_offered_not_a_guess(world: World, text: str) -> None:
    reply = await dm(world, world.alice, text)
    assert "couldn't tell which point" in reply["content"]
    assert reply.get("embeds") in (None, [])
    [picker] = [c for c in custom_ids(reply) if c.startswith("cr:chat-pick:")]
    picked = await (await world.emulator.select(world.alice, reply, picker, ["purpose"])).message()
    assert "Know why you want it" in text_of(picked)
    # ... and the point picked can keep the message all the same.
    assert route_of(picked, "chat-keep")


@pytest.mark.parametrize(
    "text",
    [
        "",  # only an attachment or a sticker
        "\u200b\u200d\ufe0f",  # nothing visible
        "@everyone money money money",
        "```python\nprint('should I do a PhD')\n```",
        "money " * 700,  # 4,200 characters
    ],
)
async def test_hostile_dms_get_a_clear_answer(world: World, text: str) -> None:
    reply = await dm(world, world.alice, text)
    assert reply["content"] or reply.get("embeds")
    assert reply["mentions"] == [] and not reply.get("mention_everyone")


async def test_fair_use_ten_answers_a_minute_then_one_note_then_quiet(world: World) -> None:
    channel = world.emulator.dm_channel_id(world.alice)
    for n in range(ANSWERS_PER_WINDOW + 3):
        await world.emulator.send_dm(world.alice, f"money worry number {n}")
    bot_id = str(world.emulator.bot_user_id)
    for _ in range(200):  # the bot answers in its own time; wait for its answers to settle
        answers = [
            m for m in world.emulator.dm_messages(world.alice) if m["author"]["id"] == bot_id
        ]
        if len(answers) >= ANSWERS_PER_WINDOW + 1:
            break
        await world.emulator.wait_for_message(channel, after=answers[-1] if answers else None)
    answers = [m for m in world.emulator.dm_messages(world.alice) if m["author"]["id"] == bot_id]
    assert len(answers) == ANSWERS_PER_WINDOW + 1
    assert "faster than I can think" in answers[-1]["content"]
    world.clock.advance(timedelta(minutes=1, seconds=1))
    assert "couldn't tell" not in (await dm(world, world.alice, "money again")).get("content", "")


async def test_a_mention_gets_a_short_public_reply_that_pings_nobody(world_any_db: World) -> None:
    world = world_any_db
    asked = await world.emulator.mention_bot(
        world.alice, world.channel_id, "@everyone how do I cope with being unknown for years?"
    )
    reply = await world.emulator.wait_for_message(world.channel_id, after=asked)
    assert reply["message_reference"]["message_id"] == asked["id"]
    assert reply["mentions"] == [] and not reply["mention_everyone"]
    # Nothing parsed, and the replied-to author not pinged (Discord's default is false).
    assert reply["allowed_mentions"]["parse"] == []
    assert not reply["allowed_mentions"].get("replied_user", False)
    assert len(reply["content"]) < 400
    # The Reflect button opens the presser's own private form.
    reflect = next(c for c in custom_ids(reply) if c.startswith("cr:reflect:"))
    modal = await (await world.emulator.click(world.bob, reply, reflect)).modal()
    assert modal["custom_id"].startswith("cr:reflect:")
    read = next(c for c in custom_ids(reply) if c.startswith("cr:chat-read:"))
    private = await world.emulator.click(world.bob, reply, read)
    assert "Think about" in text_of(await private.message())
    assert private.is_ephemeral()
    assert await stored_reflections(world) == 0


async def test_moderators_can_switch_mention_answers_off_or_keep_them_to_a_channel(
    world: World,
) -> None:
    off = await answer(world, world.moderator, "config chat", enabled=False)
    assert "chat" in off["content"] and "off" in off["content"]
    asked = await world.emulator.mention_bot(world.alice, world.channel_id, "money worries")
    with pytest.raises(TimeoutError):
        await world.emulator.wait_for_message(world.channel_id, after=asked, timeout=1.0)
    show = await answer(world, world.moderator, "config show")
    assert "chat" in text_of(show).lower()
    # On again, restricted to another channel: only answered there.
    await answer(world, world.moderator, "config chat", enabled=True)
    reflections = world.emulator.add_text_channel(world.guild_id, "reflections")
    await answer(world, world.moderator, "config channel", channel=reflections)
    await answer(world, world.moderator, "config restrict", enabled=True)
    asked = await world.emulator.mention_bot(world.alice, world.channel_id, "money worries")
    with pytest.raises(TimeoutError):
        await world.emulator.wait_for_message(world.channel_id, after=asked, timeout=1.0)
    asked = await world.emulator.mention_bot(world.alice, reflections, "money worries")
    assert await world.emulator.wait_for_message(reflections, after=asked)


async def test_bots_webhooks_and_plain_messages_are_not_answered(world: World) -> None:
    other_bot = world.emulator.add_user("otherbot", bot=True)
    world.emulator.add_member(world.guild_id, other_bot)
    before = world.emulator.message_create_requests
    await world.emulator.send_message(
        other_bot, world.channel_id, f"<@{world.emulator.bot_user_id}> money"
    )
    await world.emulator.send_webhook_message(
        world.channel_id, f"<@{world.emulator.bot_user_id}> money"
    )
    await world.emulator.send_message(world.alice, world.channel_id, "money, no mention")
    asked = await world.emulator.mention_bot(world.alice, world.channel_id, "money")
    reply = await world.emulator.wait_for_message(world.channel_id, after=asked)
    assert world.emulator.message_create_requests == before + 1  # only the real mention
    assert reply["message_reference"]["message_id"] == asked["id"]


async def test_a_checkin_reply_offers_a_rating_and_a_way_out(world_any_db: World) -> None:
    world = world_any_db
    await answer(world, world.alice, "checkin start")
    world.clock.advance(timedelta(days=8))
    await world.bot.get_cog("Checkins").loop.tick()  # type: ignore[union-attr]
    saved = await dm(world, world.alice, "Honestly? Impact, and curiosity.")
    assert "Saved as your reflection" in saved["content"]
    routes = custom_ids(saved)
    assert sum(c.startswith("cr:entry-rate:") for c in routes) == 5
    rated = await (
        await world.emulator.click(world.alice, saved, next(c for c in routes if c.endswith(":5")))
    ).message()
    assert "Rated 5/5" in rated["content"]
    # A second message that was really a question: out of the reflection, into conversation.
    question = await dm(world, world.alice, "unrelated: is a PhD worth the lower salary?")
    assert "Added to your reflection" in question["content"]
    way_out = route_of(question, "checkin-not")
    moved = await (await world.emulator.click(world.alice, question, way_out)).message()
    assert "Taken out of your reflection" in moved["content"]
    assert "Less money, longer horizon" in text_of(moved)
    async with world.database.read() as session:
        [mark] = await marks(session, user_id=world.alice)
    journal = await answer(world, world.alice, "journal list")
    assert "Honestly? Impact, and curiosity." in text_of(journal)
    assert "lower salary" not in text_of(journal)
    # Later DMs are conversation: answered, not kept.
    later = await dm(world, world.alice, "and what about my age?")
    assert "Saved as your reflection" not in later["content"]
    assert await stored_reflections(world) == 1
    assert mark.comfort == 5


async def test_the_emulator_counts_no_repeated_sends(world: World) -> None:
    await dm(world, world.alice, MONEY_AND_PHD)
    assert world.emulator.deduplicated_nonces == 0


async def test_without_read_message_history_a_mention_is_answered_beside_it(world: World) -> None:
    read_message_history = 1 << 16
    bot_id = world.emulator.bot_user_id
    world.emulator.set_permissions(world.channel_id, bot_id, deny=read_message_history)
    asked = await world.emulator.mention_bot(world.alice, world.channel_id, "money worries")
    reply = await world.emulator.wait_for_message(world.channel_id, after=asked)
    assert not reply.get("message_reference") and reply["mentions"] == []
    assert "Less money, longer horizon" in reply["content"]


async def test_installed_to_your_own_account_the_private_commands_go_with_you(
    world: World,
) -> None:
    """Discord's user install: the private commands work in the member's DMs and in a server
    that never added the bot; what acts on a server stays with servers that did."""
    commands = {c["name"]: c for c in world.emulator.registered_commands()}
    for name in ("advice", "reflect", "journal", "decide", "progress", "timezone", "checkin"):
        assert sorted(commands[name]["integration_types"]) == [0, 1], name
        assert sorted(commands[name]["contexts"]) == [0, 1, 2], name
    for name in ("mydata", "help"):
        assert sorted(commands[name]["integration_types"]) == [0, 1], name
    for name in ("config", "stats", "share"):
        assert commands[name]["integration_types"] == [0], name
        assert commands[name]["contexts"] == [0], name

    loner = world.emulator.add_user("loner")
    world.emulator.install_for_user(loner)
    elsewhere = world.emulator.add_guild("A server without the bot", bot=False)
    far = world.emulator.add_text_channel(elsewhere, "general")
    world.emulator.add_member(elsewhere, loner)
    in_dm = await world.emulator.slash(loner, "advice purpose")
    assert "Know why you want it" in text_of(await in_dm.message()) and in_dm.is_ephemeral()
    there = await world.emulator.slash(
        loner, "decide", options={"leaning": "leaning yes"}, guild_id=elsewhere, channel_id=far
    )
    assert "leaning yes" in text_of(await there.message()).lower() and there.is_ephemeral()
    # The bot is not in that server: it is not counted among the server's members (/stats).
    async with world.database.read() as session:
        members = await session.scalars(
            select(GuildMember.guild_id).where(GuildMember.user_id == loner)
        )
        assert list(members) == []
    with pytest.raises((PermissionError, LookupError)):
        await world.emulator.slash(loner, "config show", guild_id=elsewhere, channel_id=far)
