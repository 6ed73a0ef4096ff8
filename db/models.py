"""The tables. Alembic migrations in db/migrations mirror these; a test checks they agree."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints keep Alembic's batch mode on SQLite and PostgreSQL in step.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always hands back an aware datetime (SQLite alone would return naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is UTC:  # asyncpg's usual answer; runs per row, so skip the copy
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A member who has used the bot. Discord's user id is the key; no name is stored."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    journey_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class GuildSettings(Base):
    """What moderators chose for their server. A missing row means the defaults."""

    __tablename__ = "guild_settings"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    share_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    checkins_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AppState(Base):
    """Small operational facts that must survive a restart (the synced command hash, ...)."""

    __tablename__ = "app_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Reflection(Base):
    """What a member wrote about one point. `body` is encrypted (db.crypto)."""

    __tablename__ = "reflections"
    __table_args__ = (
        # The same modal submitted twice carries the same key: one entry, not two.
        UniqueConstraint("user_id", "submission_key", name="uq_reflections_user_submission"),
        # Covers /progress's scan (no text), so it never touches the table itself.
        Index("ix_reflections_user_created", "user_id", "created_at", "id", "point", "comfort"),
        Index("ix_reflections_user_point_created", "user_id", "point", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    point: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))  # advice.journey.PromptKind
    body: Mapped[bytes] = mapped_column(LargeBinary)
    comfort: Mapped[int | None] = mapped_column(SmallInteger)
    submission_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Decision(Base):
    """One `/decide`: where the member stood that day. Kept as a history, never overwritten."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    leaning: Mapped[int] = mapped_column(SmallInteger)  # advice.progress.Leaning
    reason: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
