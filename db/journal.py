"""Reflections: what members wrote about each point. Every query is scoped to one member.

Bodies are encrypted with the member's id bound in (db.crypto); functions here take the
cipher and hand back plain text, so nothing above this layer sees ciphertext.
"""

from dataclasses import dataclass
from datetime import datetime
from math import ceil
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict

from sqlalchemy import Column, Select, bindparam, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from advice.errors import NotFound
from advice.journey import PromptKind, revisited_if_first_by
from db._sql import Prebuilt, insert_for, table_of
from db.crypto import TextCipher
from db.database import ConcurrentChange
from db.models import Reflection, User
from db.users import lock_user

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.12

ENTRY_NOT_FOUND = "Entry not found. It may have been deleted, or it isn't yours."


@dataclass(frozen=True)
class Entry:
    id: int
    point: str
    kind: PromptKind
    text: str
    comfort: int | None
    created_at: datetime
    edited_at: datetime | None


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    number: int  # 0-based, clamped into range
    count: int  # pages in all (at least 1)
    total: int  # entries in all


class Saved(NamedTuple):
    entry: Entry
    created: bool  # False: this submission was saved before (a double submit)
    covered: frozenset[str]  # the points the member has written on, this one included


def entry_of(row: Any, cipher: TextCipher) -> Entry:
    """An entry from an ORM row or a Core row of the same columns."""
    return Entry(
        id=row.id,
        point=row.point,
        kind=PromptKind(row.kind),
        text=cipher.decrypt(row.body, owner_id=row.user_id, key_id=row.key_id),
        comfort=row.comfort,
        created_at=row.created_at,
        edited_at=row.edited_at,
    )


# The hot paths (a form saved, a page listed) run these: Core statements built once, on the
# tables, so neither building them nor the ORM's bookkeeping is paid each time.
REFLECTIONS = table_of(Reflection)
USERS = table_of(User)
_C = REFLECTIONS.c
_ENTRY_COLUMNS: tuple[Column[Any], ...] = (
    *(_C.id, _C.user_id, _C.point, _C.kind, _C.body, _C.key_id, _C.comfort),
    *(_C.created_at, _C.edited_at),
)
_NEWEST_FIRST = (REFLECTIONS.c.created_at.desc(), REFLECTIONS.c.id.desc())
_MINE = REFLECTIONS.c.user_id == bindparam("user_id")
FIRST_AT = select(func.min(REFLECTIONS.c.created_at)).where(
    _MINE, REFLECTIONS.c.point == bindparam("point")
)
POINTS = select(REFLECTIONS.c.point).where(_MINE).distinct()
ENTRY = select(*_ENTRY_COLUMNS).where(_MINE, REFLECTIONS.c.id == bindparam("entry_id"))
SUBMITTED = select(REFLECTIONS.c.id).where(
    _MINE, REFLECTIONS.c.submission_key == bindparam("submission_key")
)
JOURNEY_STARTS = (
    update(USERS)
    .where(USERS.c.id == bindparam("user_id"), USERS.c.journey_started_at.is_(None))
    .values(journey_started_at=bindparam("now"))
)


def _insert_reflection(dialect: str) -> Any:
    """The reflection, its kind decided by the point's first reflection (a revisit when that
    came by `revisit_if_first_by`: advice.journey's rule), returning the points written on
    before: one statement, so the kind and the coverage the answer shows cost no query."""
    names = ("user_id", "point", "body", "key_id", "comfort", "submission_key")
    first = FIRST_AT.scalar_subquery()
    revisit_by = bindparam("revisit_if_first_by", type_=REFLECTIONS.c.created_at.type)
    kind = case((first <= revisit_by, PromptKind.REVISIT.value), else_=PromptKind.FIRST.value)
    point = REFLECTIONS.c.point
    # Slugs are letters only ([a-z]{2,20}, advice.content): a comma cannot be in one.
    joined = (
        func.string_agg(point.distinct(), ",")
        if dialect == "postgresql"
        else func.group_concat(point.distinct())
    )
    # The member's reflections as RETURNING sees them: SQLite's subqueries there see the new
    # row, PostgreSQL's do not (SEES_ITSELF).
    points = select(joined).where(_MINE).scalar_subquery()
    rows = select(func.count()).select_from(REFLECTIONS).where(_MINE).scalar_subquery()
    return (
        insert_for(dialect)(REFLECTIONS)
        .values(
            {name: bindparam(name) for name in names}
            | {"kind": kind, "created_at": bindparam("now")}
        )
        .on_conflict_do_nothing(index_elements=["user_id", "submission_key"])
        .returning(REFLECTIONS.c.id, REFLECTIONS.c.kind, points.label("points"), rows.label("rows"))
    )


INSERT_REFLECTION = Prebuilt(_insert_reflection)
# Whether an INSERT's RETURNING subqueries count the row it inserted, by dialect.
SEES_ITSELF = {"sqlite": 1, "postgresql": 0}


def _page(point: bool) -> Select[Any]:
    """One page, newest first, with the count of all (a subquery SQLite runs once)."""
    mine = (_MINE, REFLECTIONS.c.point == bindparam("point")) if point else (_MINE,)
    total = select(func.count()).select_from(REFLECTIONS).where(*mine).scalar_subquery()
    return (
        select(total.label("total"), *_ENTRY_COLUMNS)
        .where(*mine)
        .order_by(*_NEWEST_FIRST)
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )


PAGE, PAGE_OF_POINT = _page(point=False), _page(point=True)
COUNT = select(func.count()).select_from(REFLECTIONS).where(_MINE)
COUNT_OF_POINT = COUNT.where(REFLECTIONS.c.point == bindparam("point"))


async def first_reflection_at(
    session: AsyncSession, *, user_id: int, point: str
) -> datetime | None:
    connection = await session.connection()
    result = await connection.execute(FIRST_AT, {"user_id": user_id, "point": point})
    first: datetime | None = result.scalar()
    return first


async def add_reflection(
    session: AsyncSession,
    cipher: TextCipher,
    *,
    user_id: int,
    point: str,
    text: str,
    comfort: int | None,
    submission_key: str | None,
    now: datetime,
) -> tuple[Entry, bool]:
    """Save a reflection; (entry, False) when this submission was already saved."""
    saved = await save_reflection(
        session,
        cipher,
        user_id=user_id,
        point=point,
        text=text,
        comfort=comfort,
        submission_key=submission_key,
        now=now,
    )
    return saved.entry, saved.created


class Draft(TypedDict):
    """A reflection to save, as save_reflection and save_reflection_on take it."""

    user_id: int
    point: str
    text: str
    comfort: int | None
    submission_key: str | None
    now: datetime


async def save_reflection(
    session: AsyncSession, cipher: TextCipher, **draft: "Unpack[Draft]"
) -> Saved:
    """add_reflection, also telling which points the member has now written on."""
    await lock_user(session, draft["user_id"], now=draft["now"])
    return await save_reflection_on(await session.connection(), cipher, **draft)


async def save_reflection_on(
    connection: AsyncConnection,
    cipher: TextCipher,
    *,
    user_id: int,
    point: str,
    text: str,
    comfort: int | None,
    submission_key: str | None,
    now: datetime,
) -> Saved:
    """save_reflection on a Core connection (db.Database.write) whose transaction holds the
    member's lock already (db.server_stats.lock_and_remember)."""
    body, key_id = cipher.seal(text, owner_id=user_id)
    values = {
        "user_id": user_id,
        "point": point,
        "body": body,
        "key_id": key_id,
        "comfort": comfort,
        "submission_key": submission_key,
        "now": now,
        "revisit_if_first_by": revisited_if_first_by(now),
    }
    row = (await connection.execute(INSERT_REFLECTION.on(connection), values)).first()
    if row is not None:
        if row.rows == SEES_ITSELF[connection.dialect.name]:  # their first: the journey starts
            await connection.execute(JOURNEY_STARTS, {"user_id": user_id, "now": now})
        covered = frozenset(row.points.split(",")) if row.points else frozenset()
        entry = Entry(row.id, point, PromptKind(row.kind), text, comfort, now, None)
        return Saved(entry, True, covered | {point})
    reflection_id = (
        await connection.execute(SUBMITTED, {"user_id": user_id, "submission_key": submission_key})
    ).scalar()
    if reflection_id is None:  # the submission this one repeats was deleted meanwhile
        raise ConcurrentChange()
    entry = await _entry_on(connection, cipher, user_id=user_id, entry_id=reflection_id)
    points = (await connection.execute(POINTS, {"user_id": user_id})).scalars()
    return Saved(entry, False, frozenset(points))


def _owned(user_id: int, point: str | None = None) -> Select[Reflection]:
    query = select(Reflection).where(Reflection.user_id == user_id)
    return query.where(Reflection.point == point) if point else query


async def get_entry(
    session: AsyncSession, cipher: TextCipher, *, user_id: int, entry_id: int
) -> Entry:
    connection = await session.connection()
    return await _entry_on(connection, cipher, user_id=user_id, entry_id=entry_id)


async def _entry_on(
    connection: AsyncConnection, cipher: TextCipher, *, user_id: int, entry_id: int
) -> Entry:
    row = (await connection.execute(ENTRY, {"user_id": user_id, "entry_id": entry_id})).first()
    if row is None:
        raise NotFound(ENTRY_NOT_FOUND)
    return entry_of(row, cipher)


async def list_page(
    session: AsyncSession,
    cipher: TextCipher,
    *,
    user_id: int,
    point: str | None,
    page: int,
    per_page: int,
) -> Page:
    """One page of the member's entries, newest first: one statement, unless the page asked
    for is past the last (entries deleted since), when the last page is read instead."""
    connection = await session.connection()
    values: dict[str, Any] = {"user_id": user_id, "point": point, "limit": per_page}
    number = max(page, 0)
    rows = (
        await connection.execute(
            PAGE_OF_POINT if point else PAGE, {**values, "offset": number * per_page}
        )
    ).all()
    if rows:
        total = rows[0].total
    else:
        total = (await connection.execute(COUNT_OF_POINT if point else COUNT, values)).scalar()
        total = total or 0
    count = max(1, ceil(total / per_page))
    if not rows and number > count - 1:
        number = count - 1
        rows = (
            await connection.execute(
                PAGE_OF_POINT if point else PAGE, {**values, "offset": number * per_page}
            )
        ).all()
    return Page([entry_of(row, cipher) for row in rows], number, count, total)


async def recent_entries(
    session: AsyncSession, cipher: TextCipher, *, user_id: int, limit: int | None
) -> list[Entry]:
    """The member's newest entries first; all of them when `limit` is None."""
    rows = await session.scalars(
        _owned(user_id).order_by(Reflection.created_at.desc(), Reflection.id.desc()).limit(limit)
    )
    return [entry_of(row, cipher) for row in rows]


async def edit_entry(
    session: AsyncSession,
    cipher: TextCipher,
    *,
    user_id: int,
    entry_id: int,
    text: str,
    comfort: int | None,
    now: datetime,
) -> Entry:
    """Replace the text (and the rating, when given); keeps the creation time.

    One UPDATE ... RETURNING, so an edit racing a delete finds no row (NotFound) instead of
    failing halfway on a row that vanished after it was read.
    """
    body, key_id = cipher.seal(text, owner_id=user_id)
    values: dict[str, object] = {"body": body, "key_id": key_id, "edited_at": now}
    if comfort is not None:
        values["comfort"] = comfort
    row = (
        await session.execute(
            update(Reflection)
            .where(Reflection.user_id == user_id, Reflection.id == entry_id)
            .values(**values)
            .returning(Reflection)
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(ENTRY_NOT_FOUND)
    return entry_of(row, cipher)


async def rate_entry(session: AsyncSession, *, user_id: int, entry_id: int, comfort: int) -> None:
    """Set the comfort rating (1 to 5) of one of the member's entries; the text is untouched."""
    rated = await session.scalar(
        update(Reflection)
        .where(Reflection.user_id == user_id, Reflection.id == entry_id)
        .values(comfort=comfort)
        .returning(Reflection.id)
    )
    if rated is None:
        raise NotFound(ENTRY_NOT_FOUND)


async def delete_entry(session: AsyncSession, *, user_id: int, entry_id: int) -> None:
    deleted = await session.scalar(
        delete(Reflection)
        .where(Reflection.user_id == user_id, Reflection.id == entry_id)
        .returning(Reflection.id)
    )
    if deleted is None:
        raise NotFound(ENTRY_NOT_FOUND)


async def reflected_points(session: AsyncSession, *, user_id: int) -> set[str]:
    connection = await session.connection()
    return set((await connection.execute(POINTS, {"user_id": user_id})).scalars())


class Mark(NamedTuple):
    """A reflection without its text: enough for charts and coverage.

    A tuple, not a dataclass: /progress builds one per reflection, a thousand at a time.
    """

    id: int
    point: str
    created_at: datetime
    comfort: int | None


async def marks(session: AsyncSession, *, user_id: int) -> list[Mark]:
    """Every reflection of the member, oldest first, without decrypting anything."""
    rows = await session.execute(
        select(Reflection.id, Reflection.point, Reflection.created_at, Reflection.comfort)
        .where(Reflection.user_id == user_id)
        .order_by(Reflection.created_at, Reflection.id)
    )
    return [Mark._make(row) for row in rows]


async def first_and_latest(
    session: AsyncSession, cipher: TextCipher, *, user_id: int, point: str
) -> list[Entry]:
    """The member's first and latest entry on a point (one when they wrote once): then vs now."""
    ordered = _owned(user_id, point).order_by(Reflection.created_at, Reflection.id)
    first = await session.scalar(ordered.limit(1))
    if first is None:
        return []
    latest = await session.scalar(
        _owned(user_id, point).order_by(Reflection.created_at.desc(), Reflection.id.desc()).limit(1)
    )
    rows = [first] if latest is None or latest.id == first.id else [first, latest]
    return [entry_of(row, cipher) for row in rows]
