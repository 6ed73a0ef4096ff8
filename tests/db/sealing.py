"""Sealed writing for the rotation and backup tests: rows loaded in bulk, then every one of
them read back and opened."""

import asyncio
import random
import re
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Table, insert, select

from db import Database
from db.crypto import TextCipher
from db.models import Decision, Reflection, User

T = TypeVar("T")
WORDS = [
    "because",
    "the",
    "work",
    "matters",
    "to",
    "me",
    "more",
    "than",
    "the",
    "title",
    "does",
    "not",
    "and",
    "yet",
    "maybe",
]
MARK = re.compile(r"^#(\d+) ")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def table(model: type[User] | type[Reflection] | type[Decision]) -> Table:
    found = model.__table__
    assert isinstance(found, Table)
    return found


def text_of(number: int, rng: random.Random) -> str:
    """Text that names its row (`#12 ...`), of a length from a few words to the form's 4,000
    characters, with some non-ASCII."""
    length = min(4000, int(rng.lognormvariate(5.7, 1.0)))
    words = [rng.choice(WORDS) for _ in range(length // 5 + 1)]
    return f"#{number} " + " ".join(words)[:length] + (" é🙂" if number % 7 == 0 else "")


@dataclass
class Written:
    """What was sealed: each text by the number it starts with, reflections and reasons."""

    reflections: dict[int, str] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)
    rows: int = 0  # read back: rows found (a number seen twice would show here)

    @property
    def total(self) -> int:
        return len(self.reflections) + len(self.reasons)


async def seed(
    database: Database,
    cipher: TextCipher,
    rows: int,
    *,
    recorded: bool = True,
    members: int = 50,
    first: int = 0,
    written: Written | None = None,
) -> Written:
    """`rows` reflections, and a decision for every tenth (every other one with a reason),
    sealed by `cipher` and loaded in bulk; `recorded=False` leaves their key id NULL, as
    for rows written before key ids were kept."""
    rng = random.Random(rows + first)
    written = written or Written()
    users = [{"id": 5000 + m, "created_at": START} for m in range(members)]
    reflections, decisions = [], []
    for number in range(first, first + rows):
        owner = 5000 + number % members
        words = text_of(number, rng)
        body, kid = cipher.seal(words, owner_id=owner)
        at = START + timedelta(minutes=number)
        reflections.append(
            {
                "user_id": owner,
                "point": "purpose",
                "kind": "first",
                "body": body,
                "key_id": kid if recorded else None,
                "created_at": at,
            }
        )
        written.reflections[number] = words
        if number % 10 == 0:
            reason = f"#{number} why: " + words[:200] if number % 20 == 0 else None
            sealed, rkid = cipher.seal(reason, owner_id=owner) if reason else (None, None)
            decisions.append(
                {
                    "user_id": owner,
                    "leaning": 1,
                    "reason": sealed,
                    "key_id": rkid if recorded else None,
                    "created_at": at,
                }
            )
            if reason:
                written.reasons[number] = reason
    async with database.transaction() as session:
        if first == 0:
            await session.execute(insert(table(User)), users)
        for start in range(0, len(reflections), 2000):
            await session.execute(insert(table(Reflection)), reflections[start : start + 2000])
        if decisions:
            await session.execute(insert(table(Decision)), decisions)
    return written


async def read_back(
    database: Database, cipher: TextCipher, *, key_id: str | None = None
) -> Written:
    """Every sealed row opened with `cipher` (each with the key its row names); with
    `key_id`, each row must name that key."""
    found = Written()
    async with database.read() as session:
        for model, column, into in (
            (Reflection, Reflection.body, found.reflections),
            (Decision, Decision.reason, found.reasons),
        ):
            rows = await session.execute(
                select(model.user_id, column, model.key_id).where(column.is_not(None))
            )
            for owner, sealed, kid in rows:
                if key_id is not None:
                    assert kid == key_id
                assert sealed is not None
                words = cipher.decrypt(sealed, owner_id=owner, key_id=kid)
                match = MARK.match(words)
                assert match, words[:40]
                into[int(match[1])] = words
                found.rows += 1
    return found


class Elsewhere:
    """Another process, as far as the database can tell: its own engine on its own event loop
    in a thread. `run` blocks the caller until the work is committed there, so a test can
    make a write happen at an exact point inside synchronous code (a cipher, a callback)."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.database = self.run(self._open(url))

    @staticmethod
    async def _open(url: str) -> Database:
        return Database(url)

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=30)

    def close(self) -> None:
        self.run(self.database.dispose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def numbered_rows(database: Database, cipher: TextCipher) -> dict[int, tuple[int, int]]:
    """Each reflection's number -> (row id, owner)."""
    found = {}
    async with database.read() as session:
        rows = await session.execute(
            select(Reflection.id, Reflection.user_id, Reflection.body, Reflection.key_id)
        )
        for row_id, owner, body, kid in rows:
            match = MARK.match(cipher.decrypt(body, owner_id=owner, key_id=kid))
            assert match
            found[int(match[1])] = (row_id, owner)
    return found
