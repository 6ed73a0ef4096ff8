"""Where a member stands on the decision, recorded over time (never overwritten)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import null, select
from sqlalchemy.ext.asyncio import AsyncSession

from advice.progress import Leaning
from db.crypto import TextCipher
from db.models import Decision
from db.users import ensure_user


@dataclass(frozen=True)
class Stance:
    leaning: Leaning
    reason: str | None
    created_at: datetime


async def add_decision(
    session: AsyncSession,
    cipher: TextCipher,
    *,
    user_id: int,
    leaning: Leaning,
    reason: str | None,
    now: datetime,
) -> None:
    await ensure_user(session, user_id, now=now)
    sealed, key_id = cipher.seal(reason, owner_id=user_id) if reason else (None, None)
    session.add(
        Decision(
            user_id=user_id,
            leaning=int(leaning),
            reason=sealed,
            key_id=key_id,
            created_at=now,
        )
    )
    await session.flush()


async def decision_history(
    session: AsyncSession, cipher: TextCipher, *, user_id: int, with_reasons: bool = True
) -> list[Stance]:
    """Oldest first. Without reasons nothing is decrypted (or even read)."""
    reason = Decision.reason if with_reasons else null().label("reason")
    rows = await session.execute(
        select(Decision.leaning, reason, Decision.key_id, Decision.created_at)
        .where(Decision.user_id == user_id)
        .order_by(Decision.created_at, Decision.id)
    )
    return [
        Stance(
            leaning=Leaning(leaning),
            reason=cipher.decrypt(sealed, owner_id=user_id, key_id=key_id) if sealed else None,
            created_at=created_at,
        )
        for leaning, sealed, key_id, created_at in rows
    ]
