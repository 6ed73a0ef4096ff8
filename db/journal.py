"""Reflections: what members wrote about each point. Every query is scoped to one member.

Bodies are encrypted with the member's id bound in (db.crypto); functions here take the
cipher and hand back plain text, so nothing above this layer sees ciphertext.
"""

from dataclasses import dataclass
from datetime import datetime
from math import ceil
from typing import NamedTuple

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from advice.errors import NotFound
from advice.journey import PromptKind, prompt_kind
from db._sql import dialect_insert
from db.crypto import TextCipher
from db.database import ConcurrentChange
from db.models import Reflection
from db.users import ensure_user

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


def _entry(row: Reflection, cipher: TextCipher) -> Entry:
    return Entry(
        id=row.id,
        point=row.point,
        kind=PromptKind(row.kind),
        text=cipher.decrypt(row.body, owner_id=row.user_id, key_id=row.key_id),
        comfort=row.comfort,
        created_at=row.created_at,
        edited_at=row.edited_at,
    )


async def first_reflection_at(
    session: AsyncSession, *, user_id: int, point: str
) -> datetime | None:
    return await session.scalar(
        select(func.min(Reflection.created_at)).where(
            Reflection.user_id == user_id, Reflection.point == point
        )
    )


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
    user = await ensure_user(session, user_id, now=now)
    if user.journey_started_at is None:
        user.journey_started_at = now
    kind = prompt_kind(await first_reflection_at(session, user_id=user_id, point=point), now)
    insert = dialect_insert(session, Reflection)
    body, key_id = cipher.seal(text, owner_id=user_id)
    reflection_id = await session.scalar(
        insert.values(
            user_id=user_id,
            point=point,
            kind=kind.value,
            body=body,
            key_id=key_id,
            comfort=comfort,
            submission_key=submission_key,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "submission_key"])
        .returning(Reflection.id)
    )
    created = reflection_id is not None
    if not created:
        reflection_id = await session.scalar(
            select(Reflection.id).where(
                Reflection.user_id == user_id, Reflection.submission_key == submission_key
            )
        )
    if reflection_id is None:  # the submission this one repeats was deleted meanwhile
        raise ConcurrentChange()
    return await get_entry(session, cipher, user_id=user_id, entry_id=reflection_id), created


def _owned(user_id: int, point: str | None = None) -> Select[Reflection]:
    query = select(Reflection).where(Reflection.user_id == user_id)
    return query.where(Reflection.point == point) if point else query


async def get_entry(
    session: AsyncSession, cipher: TextCipher, *, user_id: int, entry_id: int
) -> Entry:
    row = await session.scalar(_owned(user_id).where(Reflection.id == entry_id))
    if row is None:
        raise NotFound(ENTRY_NOT_FOUND)
    return _entry(row, cipher)


async def list_page(
    session: AsyncSession,
    cipher: TextCipher,
    *,
    user_id: int,
    point: str | None,
    page: int,
    per_page: int,
) -> Page:
    """One page of the member's entries, newest first."""
    total = await session.scalar(
        select(func.count()).select_from(_owned(user_id, point).subquery())
    )
    count = max(1, ceil((total or 0) / per_page))
    number = min(max(page, 0), count - 1)
    rows = await session.scalars(
        _owned(user_id, point)
        .order_by(Reflection.created_at.desc(), Reflection.id.desc())
        .offset(number * per_page)
        .limit(per_page)
    )
    return Page([_entry(row, cipher) for row in rows], number, count, total or 0)


async def recent_entries(
    session: AsyncSession, cipher: TextCipher, *, user_id: int, limit: int | None
) -> list[Entry]:
    """The member's newest entries first; all of them when `limit` is None."""
    rows = await session.scalars(
        _owned(user_id).order_by(Reflection.created_at.desc(), Reflection.id.desc()).limit(limit)
    )
    return [_entry(row, cipher) for row in rows]


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
    return _entry(row, cipher)


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
    rows = await session.scalars(
        select(Reflection.point).where(Reflection.user_id == user_id).distinct()
    )
    return set(rows)


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
    return [_entry(row, cipher) for row in rows]
