"""What must hold after every hostile interaction, whatever it was (issue 9's invariants).

- It is answered: within Discord's 3 seconds (the emulator records a late first response as a
  violation) and with a final answer within ANSWER_TIMEOUT; meanwhile the bot's event loop never
  stalls for longer than STALL_LIMIT (that would make everyone's interactions late).
- No answer holds a traceback; none holds an error id (the database is healthy, so an error id
  can only mean bad input was treated as a server fault).
- The emulator recorded no violation, and the bot logged no error.
- Nobody else's data changed (every row keyed by another member, compared whole) or was shown
  (their private text, seeded with markers, appears in nothing the actor or a channel received),
  and nobody was pinged.
- Whatever the member typed (the form's own text inputs, free-text options) was saved, or
  handed back in the answer or an attachment. Text with nothing visible in it (only spaces,
  controls, format characters, lone surrogates) counts as nothing typed.
"""

import asyncio
import json
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, select

from db.models import Base, Decision, Reflection
from sandbox import Interaction
from tests.fuzz.arena import Arena

JSON = Any
Sent = Interaction | dict[str, JSON]  # an interaction, or a DM the member wrote
# The final answer, as the e2e tests wait for it (the first response has the emulator's 3 s).
# A deferred answer may take longer on Discord, but a member waiting this long has given up.
ANSWER_TIMEOUT = 10.0
STALL_LIMIT = 2.0  # seconds the bot's event loop may go without running anything
SETTLE_TIMEOUT = 5.0  # work a handler still does after answering
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]*\", line \d+")
ERROR_ID = re.compile(r"error id", re.IGNORECASE)
# discord.py runs each interaction in one of these tasks; none left means the bot is idle.
HANDLER_TASKS = ("CommandTree-invoker", "discord.py: on_interaction", "discord.py: interaction")
INVISIBLE = {"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"}
# Letters and marks that draw nothing: Hangul fillers, blank Braille, the combining grapheme
# joiner, Khmer's inherent vowels, variation selectors.
BLANK = {*"\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5"} | {
    chr(c) for c in [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
}


class ErrorLog(logging.Handler):
    """Every ERROR the bot (or discord.py on its behalf) logs while an example runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        out = []
        for record in self.records:
            cause = record.exc_info[1] if record.exc_info else None
            suffix = f": {type(cause).__name__}: {cause}" if cause else ""
            out.append(f"{record.name}: {record.getMessage()}{suffix}"[:600])
        return out


def skeleton(text: str) -> str:
    """The visible characters of a text: what must survive being saved or handed back.

    A surrogate pair sent as two halves is the one character it encodes; a lone half is
    nothing (a bot may drop it or show U+FFFD in its place).
    """
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return "".join(
        ch
        for ch in text
        if unicodedata.category(ch) not in INVISIBLE
        and not ch.isspace()
        and ch not in BLANK
        and ch != "\ufffd"
    )


def strings(value: JSON) -> Iterator[str]:
    """Every string inside a JSON value (keys excepted)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


@dataclass
class Before:
    others: dict[str, list[tuple[Any, ...]]]
    mine: dict[tuple[str, int], bytes | None]
    channel_counts: dict[int, int]
    dm_count: int
    violations: int


# Tables no member's action may be blamed for changing: the bot's own bookkeeping (the synced
# commands' hash, the shared request pace), which its timed jobs move whoever acts.
NOT_ANYONES = {"app_state"}


def not_the_actors(arena: Arena, table: Table, actor: int) -> ColumnElement[bool]:
    """The rows of `table` that `actor` must never change: other members' own rows, and the
    rows of servers `actor` may not configure (settings, the audit trail, weekly posts)."""
    if "user_id" in table.c:
        return table.c.user_id != actor
    if table.name == "users":
        return table.c.id != actor
    if "guild_id" in table.c:
        return table.c.guild_id.not_in(arena.moderates(actor))
    raise AssertionError(f"whose are the rows of {table.name}? Say so here, or in NOT_ANYONES")


async def rows_of_others(arena: Arena, actor: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table that is not `actor`'s to change, whole."""
    snapshot = {}
    async with arena.world.database.read() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in NOT_ANYONES:
                continue
            order = list(table.primary_key.columns)
            where = not_the_actors(arena, table, actor)
            result = await session.execute(select(table).where(where).order_by(*order))
            snapshot[table.name] = [tuple(row) for row in result]
    return snapshot


async def texts_of(arena: Arena, actor: int) -> dict[tuple[str, int], bytes | None]:
    """The actor's encrypted texts by row, to find what an interaction saved."""
    async with arena.world.database.read() as session:
        bodies = await session.execute(
            select(Reflection.id, Reflection.body).where(Reflection.user_id == actor)
        )
        reasons = await session.execute(
            select(Decision.id, Decision.reason).where(Decision.user_id == actor)
        )
    return {
        **{("reflection", i): body for i, body in bodies},
        **{("decision", i): reason for i, reason in reasons},
    }


async def observe(arena: Arena, actor: int) -> Before:
    emulator = arena.emulator
    return Before(
        others=await rows_of_others(arena, actor),
        mine=await texts_of(arena, actor),
        channel_counts={c: len(emulator.channel_messages(c)) for c in arena.channels.values()},
        dm_count=len(emulator.dm_messages(actor)),
        violations=len(emulator.violations),
    )


async def settle() -> bool:
    """Wait until no interaction handler is running; False if one still is after the limit."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT
    while loop.time() < deadline:
        busy = [t for t in asyncio.all_tasks() if t.get_name() in HANDLER_TASKS and not t.done()]
        if not busy:
            return True
        await asyncio.sleep(0.005)
    return False


@dataclass
class Seen:
    """What the actor and everyone in a channel received because of the interaction."""

    messages: list[dict[str, JSON]]  # new or answered messages (the actor's and public ones)
    callbacks: list[dict[str, JSON]]  # modal, autocomplete choices and first responses
    files: list[str]  # attachments, decoded

    def texts(self) -> list[str]:
        return [*strings(self.messages), *strings(self.callbacks)]


async def seen(arena: Arena, actor: int, sent: Sent, before: Before) -> Seen:
    emulator = arena.emulator
    messages: list[dict[str, JSON]] = []
    callbacks: list[dict[str, JSON]] = []
    if isinstance(sent, Interaction):
        if sent.answer_id is not None:
            messages.append(await sent.message(timeout=1))
        messages += sent.followups
        callbacks = [c.get("data") or {} for c in sent.callbacks]
    bot = str(emulator.bot_user_id)
    for channel, count in before.channel_counts.items():  # the bot's posts, not the members'
        messages += [
            m for m in emulator.channel_messages(channel)[count:] if m["author"]["id"] == bot
        ]
    messages += [
        m
        for m in emulator.dm_messages(actor)[before.dm_count :]
        if int(m["author"]["id"]) != actor  # the member's own DM is theirs to see
    ]
    files = [
        decode(emulator.attachment_bytes(message, attachment["filename"]))
        for message in messages
        for attachment in message.get("attachments") or []
    ]
    return Seen(messages, callbacks, files)


async def answered(arena: Arena, actor: int, sent: Sent, before: Before) -> str | None:
    """Wait for the answer: what it was, in a few words (for statistics); None if none came."""
    if isinstance(sent, Interaction):
        try:
            await sent.answered(timeout=ANSWER_TIMEOUT)
        except TimeoutError:
            return None
        body = sent.callbacks[0]
        if body.get("type") == 8:
            return "choices" if (body.get("data") or {}).get("choices") else "no choices"
        if body.get("type") == 9:
            return "a form"
        return _gist(await sent.message(timeout=1))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ANSWER_TIMEOUT
    bot = str(arena.emulator.bot_user_id)
    while loop.time() < deadline:  # a DM is answered by a DM, a mention in its channel
        channel = int(str(sent["channel_id"]))
        if channel != arena.emulator.dm_channel_id(actor):
            replies = [
                m
                for m in arena.emulator.channel_messages(channel)
                if m["author"]["id"] == bot and int(m["id"]) > int(str(sent["id"]))
            ]
        else:
            replies = [
                m
                for m in arena.emulator.dm_messages(actor)[before.dm_count :]
                if int(m["author"]["id"]) != actor
            ]
        if replies:
            return _gist(replies[0])
        await asyncio.sleep(0.005)
    return None


def _gist(message: dict[str, JSON]) -> str:
    embeds = message.get("embeds") or [{}]
    text = message.get("content") or f"embed {embeds[0].get('title')}"
    return re.sub(r"\d+", "#", text)[:50]


def _row_changes(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> list[str]:
    changes = []
    for table, rows in after.items():
        old = set(before.get(table, []))
        new = set(rows)
        if old != new:
            changes.append(
                f"{table}: gone {sorted(old - new, key=repr)[:2]!r}, "
                f"new {sorted(new - old, key=repr)[:2]!r}"[:800]
            )
    return changes


async def saved_texts(arena: Arena, actor: int, before: Before) -> list[str]:
    """The actor's texts that this interaction wrote (new rows, or rows whose text changed)."""
    cipher = arena.world.bot.cipher
    after = await texts_of(arena, actor)
    return [
        cipher.decrypt(blob, owner_id=actor)
        for key, blob in after.items()
        if blob is not None and before.mine.get(key) != blob
    ]


def _answers(what: Seen) -> Iterator[str]:
    """No traceback anywhere, and no error id: the database is healthy, so the input caused it."""
    for text in what.texts():
        if TRACEBACK.search(text):
            yield f"an answer shows a traceback: {text[:300]!r}"
        if ERROR_ID.search(text):
            yield f"an answer gives an error id for bad input: {text[:300]!r}"
    for text in what.files:
        if TRACEBACK.search(text):
            yield f"an attachment shows a traceback: {text[:300]!r}"


def _privacy(arena: Arena, actor: int, what: Seen) -> Iterator[str]:
    visible = "\n".join([*what.texts(), *what.files])
    for other in arena.others(actor):
        leaked = [m for m in arena.markers_of(other) if m in visible]
        if leaked:
            yield f"{arena.names[other]}'s private text was shown: {leaked}"
    for message in what.messages:
        if any(message.get(k) for k in ("mention_everyone", "mentions", "mention_roles")):
            yield f"a message pinged someone: {json.dumps(message)[:300]}"


async def verdict(
    arena: Arena, actor: int, sent: Sent, before: Before, typed: Iterable[str]
) -> tuple[str | None, list[str]]:
    """What the answer was, and every invariant the interaction broke, in words."""
    findings = []
    gist = await answered(arena, actor, sent, before)
    if gist is None:
        kinds = [c.get("type") for c in sent.callbacks] if isinstance(sent, Interaction) else []
        findings.append(f"no answer within {ANSWER_TIMEOUT}s (callback types so far: {kinds})")
    if not await settle():
        findings.append(f"a handler was still running {SETTLE_TIMEOUT}s after the answer")
    findings += [f"emulator violation: {v}" for v in arena.emulator.violations[before.violations :]]
    what = await seen(arena, actor, sent, before)
    findings += _answers(what)
    findings += _privacy(arena, actor, what)
    changes = _row_changes(before.others, await rows_of_others(arena, actor))
    findings += [f"another member's data changed: {c}" for c in changes]
    typed = [t for t in typed if skeleton(t)]
    if typed:
        saved = await saved_texts(arena, actor, before)
        kept = skeleton("\n".join([*what.texts(), *what.files, *saved]))
        findings += [
            f"typed text neither saved nor handed back: {text[:200]!r}"
            for text in typed
            if skeleton(text) not in kept
        ]
    return gist, findings


async def probe(
    arena: Arena,
    actor: int,
    send: Callable[[], Awaitable[Sent]],
    *,
    what: str,
    typed: Iterable[str] = (),
    errors: ErrorLog,
) -> str:
    """Send one interaction (or DM) as `actor`; fail with every invariant it broke, else
    return the gist of the answer (for Hypothesis's statistics: what the examples reached)."""
    before = await observe(arena, actor)
    errors.records.clear()
    arena.lag.worst = 0.0
    sent = await send()
    gist, findings = await verdict(arena, actor, sent, before, typed)
    if arena.lag.worst > STALL_LIMIT:
        findings.append(f"the event loop stalled for {arena.lag.worst:.1f}s")
    findings += [f"the bot logged an error: {line}" for line in errors.lines()]
    if findings:
        lines = "\n  - ".join(findings)
        raise AssertionError(f"{arena.names[actor]} sent {what}:\n  - {lines}")
    return gist or ""
