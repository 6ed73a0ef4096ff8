"""Everything /progress shows, in two statements: marks with their then-vs-now texts, and the
journey with its decisions.

/progress is the most frequent read of a whole journal, so its cost is mostly per statement
(a round trip, and on SQLite a hop to the driver's thread), not per row: it was four
statements; the figures are in bench/journal.py.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, bindparam, case, func, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from advice.progress import Leaning
from db.crypto import TextCipher
from db.decisions import Stance
from db.journal import Mark
from db.models import Decision, Reflection, User


@dataclass(frozen=True)
class ProgressData:
    journey_started_at: datetime | None
    timezone: str | None
    marks: list[Mark]  # oldest first
    # The first and latest entry of each point revisited (of every point, with `every_point`)
    texts: dict[int, str]
    stances: list[Stance]  # oldest first; reasons only when asked for

    @property
    def empty(self) -> bool:
        return not self.marks and not self.stances


def _marks_with_texts(
    *, every_point: bool = False
) -> Select[int, str, datetime, int | None, bytes | None]:
    """Every reflection of the member, oldest first, with the text of just those then-vs-now
    shows (the first and latest of each point written more than once; with `every_point`,
    of each point written at all): the marks come from an index alone, and only those few
    texts are read from the table."""
    ordered = (Reflection.created_at, Reflection.id)
    scan = (
        select(
            Reflection.id,
            Reflection.point,
            Reflection.created_at,
            Reflection.comfort,
            func.row_number().over(partition_by=Reflection.point, order_by=ordered).label("nth"),
            func.count().over(partition_by=Reflection.point).label("of"),
        )
        .where(Reflection.user_id == bindparam("user_id"))
        .subquery()
    )
    entry = aliased(Reflection)
    first_or_latest = or_(scan.c.nth == 1, scan.c.nth == scan.c.of)
    then_or_now = first_or_latest if every_point else and_(scan.c.of > 1, first_or_latest)
    body = select(entry.body).where(entry.id == scan.c.id).scalar_subquery()
    return select(
        scan.c.id, scan.c.point, scan.c.created_at, scan.c.comfort, case((then_or_now, body))
    ).order_by(scan.c.created_at, scan.c.id)


# Built once: making the expressions cost more than running them.
MARKS_WITH_TEXTS = _marks_with_texts()
MARKS_WITH_EVERY_POINTS_FIRST_AND_LATEST = _marks_with_texts(every_point=True)


def _journey_with_decisions(
    *, reasons: bool
) -> Select[datetime | None, str | None, int, bytes | None, datetime]:
    reason = Decision.reason if reasons else null().label("reason")
    return (
        select(
            User.journey_started_at, User.timezone, Decision.leaning, reason, Decision.created_at
        )
        .outerjoin(Decision, Decision.user_id == User.id)
        .where(User.id == bindparam("user_id"))
        .order_by(Decision.created_at, Decision.id)
    )


JOURNEY_WITH_DECISIONS = _journey_with_decisions(reasons=False)
JOURNEY_WITH_DECISIONS_AND_REASONS = _journey_with_decisions(reasons=True)


async def progress_data(
    session: AsyncSession,
    cipher: TextCipher,
    *,
    user_id: int,
    every_point: bool = False,
    reasons: bool = False,
) -> ProgressData:
    """What /progress shows. The year's summary asks for more: with `every_point`, the first
    and latest text of a point written about once too; with `reasons`, the decisions' reasons.
    """
    # Core statements on the session's connection: no ORM entities, so no ORM bookkeeping.
    connection = await session.connection()
    marks, texts = [], {}
    statement = MARKS_WITH_EVERY_POINTS_FIRST_AND_LATEST if every_point else MARKS_WITH_TEXTS
    rows = (await connection.execute(statement, {"user_id": user_id})).all()  # fetched at once
    for entry_id, point, created_at, comfort, sealed in rows:
        marks.append(Mark(entry_id, point, created_at, comfort))
        if sealed is not None:
            texts[entry_id] = cipher.decrypt(sealed, owner_id=user_id)
    journey_statement = JOURNEY_WITH_DECISIONS_AND_REASONS if reasons else JOURNEY_WITH_DECISIONS
    journey = (await connection.execute(journey_statement, {"user_id": user_id})).all()
    return ProgressData(
        journey_started_at=journey[0].journey_started_at if journey else None,
        timezone=journey[0].timezone if journey else None,
        marks=marks,
        texts=texts,
        stances=[
            Stance(
                leaning=Leaning(row.leaning),
                reason=cipher.decrypt(row.reason, owner_id=user_id) if row.reason else None,
                created_at=row.created_at,
            )
            for row in journey
            if row.leaning is not None  # the journey's own row when there is no decision yet
        ],
    )
