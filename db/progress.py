"""Everything /progress shows, in one read: marks, opening texts, decisions, journey start."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.crypto import TextCipher
from db.decisions import Stance, decision_history
from db.journal import Mark, marks, texts
from db.models import User


@dataclass(frozen=True)
class ProgressData:
    journey_started_at: datetime | None
    timezone: str | None
    marks: list[Mark]  # oldest first
    texts: dict[int, str]  # only the first and latest entry of each point revisited
    stances: list[Stance]  # oldest first, without reasons

    @property
    def empty(self) -> bool:
        return not self.marks and not self.stances


async def progress_data(session: AsyncSession, cipher: TextCipher, *, user_id: int) -> ProgressData:
    user = (
        await session.execute(
            select(User.journey_started_at, User.timezone).where(User.id == user_id)
        )
    ).one_or_none()
    all_marks = await marks(session, user_id=user_id)
    by_point: dict[str, list[Mark]] = {}
    for mark in all_marks:
        by_point.setdefault(mark.point, []).append(mark)
    # Decrypt only what then-vs-now shows, not a year of writing.
    wanted = [m.id for ms in by_point.values() if len(ms) > 1 for m in (ms[0], ms[-1])]
    return ProgressData(
        journey_started_at=user.journey_started_at if user else None,
        timezone=user.timezone if user else None,
        marks=all_marks,
        texts=await texts(session, cipher, user_id=user_id, entry_ids=wanted),
        stances=await decision_history(session, cipher, user_id=user_id, with_reasons=False),
    )
