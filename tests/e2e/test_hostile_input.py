"""Hostile input and failing dependencies (issue 9): every one ends in a clear private answer.

Each test here failed before its fix. Nothing a member typed is lost, and an error id shows
up only for a genuine fault of ours, never for what a member sent.
"""

import asyncio
import copy
import io
import json
import random
import sys
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cogs.core.text import BROKEN_TEXT_NOTE
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.models import Decision, Reflection
from db.users import ensure_user
from sandbox import Interaction
from tests.e2e.conftest import World
from tests.e2e.test_journal import write
from tests.e2e.test_reflect import entries, open_reflect, submit

GONE = "postgresql+asyncpg://nobody@127.0.0.1:9/unreachable"
OUR_FAULT = "went wrong on our side"


def no_error_id(message: dict[str, Any]) -> str:
    content = str(message.get("content") or "")
    assert OUR_FAULT not in content, content
    assert "Traceback" not in str(message)
    return content


def with_button(message: dict[str, Any], custom_id: str) -> dict[str, Any]:
    """A forged copy of `message` whose first button carries `custom_id`."""
    forged = copy.deepcopy(message)
    forged["components"][0]["components"][0]["custom_id"] = custom_id
    return forged


# --- 1. autocomplete always answers --------------------------------------------------------


async def test_autocomplete_answers_an_empty_list_when_storage_is_gone(world: World) -> None:
    await write(world, world.alice, "purpose", "written while all was well")
    healthy, world.bot.database = world.bot.database, Database(GONE)
    try:
        for command in ("journal edit", "journal delete", "share"):
            choices = await world.emulator.autocomplete(
                world.alice, command, focused="entry", value="wri", guild_id=world.guild_id
            )
            assert choices == [], command
    finally:
        await world.bot.database.dispose()
        world.bot.database = healthy


async def test_autocomplete_answers_an_empty_list_under_the_wrong_key(world: World) -> None:
    await write(world, world.alice, "purpose", "sealed with the right key")
    right, world.bot.cipher = world.bot.cipher, TextCipher(parse_key(generate_key()))
    try:
        choices = await world.emulator.autocomplete(
            world.alice, "journal edit", focused="entry", value=""
        )
        assert choices == []
        # The commands themselves explain instead of giving an error id.
        listing = await (await world.slash(world.alice, "journal list")).message()
        assert "can't be decrypted" in no_error_id(listing)
        exported = await (await world.slash(world.alice, "mydata export")).message()
        assert "can't be decrypted" in no_error_id(exported)
    finally:
        world.bot.cipher = right


async def test_autocomplete_answers_in_time_when_storage_hangs(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    never = asyncio.Event()

    @asynccontextmanager
    async def hung_read() -> AsyncIterator[AsyncSession]:
        await never.wait()
        yield None  # type: ignore[misc]  # never reached

    monkeypatch.setattr(world.bot.tree, "autocomplete_budget", 0.2)
    monkeypatch.setattr(world.bot.database, "read", hung_read)
    choices = await world.emulator.autocomplete(
        world.alice, "journal edit", focused="entry", value=""
    )
    assert choices == []  # and the fixture checks it was not late


# --- 2. ids beyond 32 (and 64) bits ----------------------------------------------------------

HUGE_IDS = [
    "2147483648",  # one past PostgreSQL's integer
    "999999999999999999",
    "9223372036854775807",  # the largest bigint: a valid query that finds nothing
    "9223372036854775808",
    "99999999999999999999",
    "1" * 5000,  # past Python's int-string limit
]


async def test_typed_entry_ids_of_any_size_are_not_found(world_any_db: World) -> None:
    world = world_any_db
    await write(world, world.alice, "purpose", "the only entry")
    for value in HUGE_IDS:
        for command in ("journal edit", "journal delete"):
            ix = await world.slash(world.alice, command, entry=value)
            assert "not found" in no_error_id(await ix.message()).lower(), (command, value[:30])
    assert [e.text for e in await entries(world, world.alice)] == ["the only entry"]


async def test_forged_custom_ids_with_huge_numbers_are_refused_clearly(
    world_any_db: World,
) -> None:
    world = world_any_db
    await write(world, world.alice, "purpose", "keep me")
    [entry] = await entries(world, world.alice)
    ask = await (await world.slash(world.alice, "journal delete", entry=str(entry.id))).message()
    modal = await (await world.slash(world.alice, "journal edit", entry=str(entry.id))).modal()
    for value in HUGE_IDS[:5]:
        forged = with_button(ask, f"cr:journal-delete:{world.alice}:{value}"[:100])
        pressed = await world.emulator.click(world.alice, forged, forged_id(forged))
        answer = no_error_id(await pressed.message())
        assert "not found" in answer.lower() or "no longer active" in answer, (value, answer)
        edit = dict(modal, custom_id=f"cr:journal-edit:{value}")
        submitted = await world.emulator.submit_modal(world.alice, edit, {"text": "rewrite"})
        answer_message = await submitted.message()
        no_error_id(answer_message)
        texts = [a["filename"] for a in answer_message.get("attachments", [])]
        assert texts, f"the rewrite was not handed back for {value}"
    assert [e.text for e in await entries(world, world.alice)] == ["keep me"]


def forged_id(message: dict[str, Any]) -> str:
    return str(message["components"][0]["components"][0]["custom_id"])


# --- 3. /mydata export within Discord's upload limit ------------------------------------------


EMOJI = [chr(code) for code in range(0x1F300, 0x1FAFF)]


def emoji_text(rng: random.Random, length: int) -> str:
    """Varied emoji, four bytes each in UTF-8, so the export compresses poorly."""
    return "".join(rng.choices(EMOJI, k=length))


async def test_a_huge_export_arrives_in_parts_within_the_upload_limit(world: World) -> None:
    rng = random.Random(9)
    texts = [emoji_text(rng, 4000) for _ in range(1000)]
    async with world.database.transaction() as session:  # one statement: seeding isn't tested
        await ensure_user(session, world.alice, now=world.clock.now())
        rows = [
            {
                "user_id": world.alice,
                "point": "purpose",
                "kind": "first",
                "body": world.bot.cipher.encrypt(text, owner_id=world.alice),
                "created_at": world.clock.now() + timedelta(seconds=index),
            }
            for index, text in enumerate(texts)
        ]
        await session.execute(insert(Reflection), rows)
    ix = await world.slash(world.alice, "mydata export")
    first = await ix.message(timeout=120)
    content = no_error_id(first)
    assert "1000 reflections" in content
    limit = ix.payload["attachment_size_limit"]
    messages = [first, *await followups(ix, expected=count_parts(content) - 1)]
    exported: list[str] = []
    for message in messages:
        [attachment] = message["attachments"]
        blob = world.emulator.attachment_bytes(message, attachment["filename"])
        assert len(blob) <= limit
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            names = sorted(archive.namelist())
            assert [n.rsplit(".", 1)[1] for n in names] == ["json", "md"]
            part = json.loads(archive.read(names[0]))
            markdown = archive.read(names[1]).decode()
        exported += [r["text"] for r in part["reflections"]]
        assert all(r["text"] in markdown for r in part["reflections"])
    assert len(messages) > 1  # too big for one upload: it came in parts
    assert exported == texts  # every entry, once, oldest first


def count_parts(content: str) -> int:
    marker = " parts"
    if marker not in content:
        return 1
    return int(content.split(marker)[0].rsplit(" ", 1)[1])


async def followups(ix: Interaction, *, expected: int) -> list[dict[str, Any]]:
    async def arrived() -> None:
        while len(ix.followups) < expected:  # noqa: ASYNC110 (no event per follow-up)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(arrived(), 60)
    return [copy.deepcopy(m) for m in ix.followups]


async def test_when_discord_refuses_an_upload_the_member_learns_why(world: World) -> None:
    await write(world, world.alice, "purpose", "a small export")
    world.emulator.fail_next("PATCH", r"/messages/@original$", status=413, code=40005)
    exported = await (await world.slash(world.alice, "mydata export")).message()
    assert "too large" in no_error_id(exported)


async def test_when_discord_refuses_an_answer_the_member_is_told(world: World) -> None:
    """A refusal (400, 50035) means we sent something wrong: a bug, with an error id."""
    world.emulator.fail_next("PATCH", r"/messages/@original$", status=400, code=50035)
    ix = await world.slash(world.alice, "decide", leaning="no", why="kept anyway")
    answer = await ix.message()
    assert "Discord refused this answer" in answer["content"]
    assert world.emulator.attachment_bytes(answer, "what-you-wrote.txt") == b"kept anyway"


# --- 4. /mydata forget racing a /reflect submit -----------------------------------------------


Hook = Callable[..., Awaitable[Any]]


async def bounded(event: asyncio.Event, seconds: float = 0.3) -> None:
    """Wait for `event`, but not forever: the other side may be (rightly) blocked on a lock."""
    with suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


@pytest.mark.parametrize("first", ["reflect", "forget"])
async def test_forget_racing_a_reflection_ends_consistently(
    world_any_db: World, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    """Either order is fine, as long as it is one order: forget deletes what existed when it
    ran, and a reflection saved after it stays, under a fresh record of the member."""
    world = world_any_db
    await write(world, world.alice, "purpose", "from before")
    modal = await open_reflect(world, world.alice, "money")
    ask = await (await world.slash(world.alice, "mydata forget")).message()
    mydata, reflect = sys.modules["cogs.mydata.cog"], sys.modules["cogs.reflect"]
    forget, save_reflection = mydata.forget, reflect.save_reflection_on
    reflect_started, forget_started = asyncio.Event(), asyncio.Event()

    async def reflect_holding(*args: Any, **kwargs: Any) -> Any:
        # Reflect holds the member's row (db.locks); forget, pressed now, waits for it.
        reflect_started.set()
        if first == "reflect":
            await asyncio.sleep(0.3)
        return await save_reflection(*args, **kwargs)

    async def forget_holding(*args: Any, **kwargs: Any) -> Any:
        removed = await forget(*args, **kwargs)
        if first == "forget":
            # Forget holds the member's row and has deleted (not yet committed); reflect,
            # submitted now, waits for it, then saves under a fresh record.
            forget_started.set()
            await asyncio.sleep(0.3)
        return removed

    monkeypatch.setattr(reflect, "save_reflection_on", reflect_holding)
    monkeypatch.setattr(mydata, "forget", forget_holding)
    forget_id = f"cr:mydata-forget:{world.alice}"
    if first == "reflect":
        saving = asyncio.create_task(
            world.emulator.submit_modal(world.alice, modal, {"text": "during"})
        )
        await reflect_started.wait()
        forgetting = asyncio.create_task(world.emulator.click(world.alice, ask, forget_id))
    else:
        forgetting = asyncio.create_task(world.emulator.click(world.alice, ask, forget_id))
        await forget_started.wait()
        saving = asyncio.create_task(
            world.emulator.submit_modal(world.alice, modal, {"text": "during"})
        )
    saved = no_error_id(await (await saving).message())
    forgot = no_error_id(await (await forgetting).message())
    assert "Saved" in saved, saved
    assert "deleted" in forgot, forgot
    left = [e.text for e in await entries(world, world.alice)]
    # Reflect first: forget came after and took it too. Forget first: the new one stays.
    assert left == ([] if first == "reflect" else ["during"]), left


# --- 7. text that cannot be encoded --------------------------------------------------------


async def test_a_lone_surrogate_in_a_reflection_is_saved_replaced_and_said(world: World) -> None:
    modal = await open_reflect(world, world.alice, "purpose")
    answer = await submit(world, world.alice, modal, "half an emoji \ud83d here")
    assert "Saved" in no_error_id(answer)
    assert BROKEN_TEXT_NOTE in answer["content"]
    assert [e.text for e in await entries(world, world.alice)] == ["half an emoji \ufffd here"]


async def test_a_lone_surrogate_in_a_decide_reason_is_saved_replaced(world: World) -> None:
    ix = await world.slash(world.alice, "decide", leaning="no", why="because \udc00 of it")
    answer = no_error_id(await ix.message())
    assert "Recorded" in answer and BROKEN_TEXT_NOTE in answer
    async with world.database.read() as session:
        sealed = await session.scalar(
            Decision.__table__.select().with_only_columns(Decision.reason)
        )
    assert world.bot.cipher.decrypt(sealed, owner_id=world.alice) == "because \ufffd of it"


async def test_a_refusal_quoting_a_lone_surrogate_still_reaches_the_member(world: World) -> None:
    """Found by the fuzz suite (F5): the refusal quoted the zone as typed, and Discord refused
    the refusal (400, 50109), so the member saw "The application did not respond"."""
    answer = await (await world.slash(world.alice, "timezone", zone="\ud800")).message()
    assert "isn't a time zone I know" in answer["content"]
    assert world.emulator.violations == []


async def test_a_lone_surrogate_comes_back_when_storage_is_gone(world: World) -> None:
    modal = await open_reflect(world, world.alice, "purpose")
    healthy, world.bot.database = world.bot.database, Database(GONE)
    try:
        ix = await world.emulator.submit_modal(world.alice, modal, {"text": "lost \ud800 not"})
        answer = await ix.message()
        assert "can't reach its storage" in no_error_id(answer)
        returned = world.emulator.attachment_bytes(answer, "what-you-wrote.txt")
        assert returned.decode("utf-8") == "lost \ufffd not"
    finally:
        await world.bot.database.dispose()
        world.bot.database = healthy


# --- 8. blank text and an absurd rating ------------------------------------------------------


@pytest.mark.parametrize(
    "invisible",
    ["\u200b\u200c\u200d\u2060\ufeff", "\u200b \n\u3164\ufe0f\u00ad", "\u2800\u180e\u2062"],
)
async def test_a_reflection_of_invisible_characters_is_refused_and_handed_back(
    world: World, invisible: str
) -> None:
    modal = await open_reflect(world, world.alice, "purpose")
    answer = await submit(world, world.alice, modal, invisible)
    assert "nothing was saved" in no_error_id(answer)
    handed_back = world.emulator.attachment_bytes(answer, "what-you-wrote.txt")
    assert handed_back == invisible.encode()
    assert await entries(world, world.alice) == []


async def test_a_five_thousand_digit_rating_is_ignored_with_a_note(world: World) -> None:
    modal = await open_reflect(world, world.alice, "purpose")
    answer = await submit(
        world, world.alice, modal, "kept", ["9" * 5000], enforce_client_limits=False
    )
    assert "Saved" in no_error_id(answer)
    assert "saved without one" in answer["content"]
    assert [(e.text, e.comfort) for e in await entries(world, world.alice)] == [("kept", None)]


# --- found by the fuzz suite (tests/fuzz) ----------------------------------------------------


async def test_a_forged_leaning_hands_the_reason_back(world: World) -> None:
    """F1: the leaning was refused, but the reason beside it was fine: it must not be lost."""
    ix = await world.slash(
        world.alice, "decide", leaning="", why="keep me", enforce_client_limits=False
    )
    answer = await ix.message()
    assert "Pick one of the five" in no_error_id(answer)
    assert world.emulator.attachment_bytes(answer, "what-you-wrote.txt") == b"keep me"


async def test_a_select_named_like_the_text_input_cannot_displace_the_text(world: World) -> None:
    """F2: a forged form naming a select `text` too; what the member wrote is still read."""
    await write(world, world.alice, "purpose", "before")
    [entry] = await entries(world, world.alice)
    modal = await (await world.slash(world.alice, "journal edit", entry=str(entry.id))).modal()
    option = {"label": "x", "value": ";"}
    modal["components"] = [
        {"type": 18, "label": "W", "component": {"type": 4, "custom_id": "text", "style": 2}},
        {
            "type": 18,
            "label": "R",
            "component": {"type": 3, "custom_id": "text", "options": [option]},
        },
    ]
    ix = await world.emulator.submit_modal(
        world.alice, modal, {"text": "my rewrite"}, enforce_client_limits=False
    )
    assert "Saved your edit" in no_error_id(await ix.message())
    assert [e.text for e in await entries(world, world.alice)] == ["my rewrite"]
