"""The tables. Alembic migrations in db/migrations mirror these; a test checks they agree."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

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
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import TextClause

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

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """On SQLite, one function per value (parse, then UTC) instead of the parse and
        process_result_value in turn: /progress reads a thousand of these at a time."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        found = self.impl_instance.dialect_impl(dialect).result_processor(dialect, coltype)
        if found is None:
            return super().result_processor(dialect, coltype)
        parse = cast(Callable[[Any], datetime], found)

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            parsed = parse(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"a date and time column held {type(value).__name__}, not datetime")
        if value.tzinfo is UTC:  # asyncpg's usual answer; runs per row, so skip the copy
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Every id is 64-bit: BIGINT on PostgreSQL; SQLite's INTEGER PRIMARY KEY already is 64-bit and
# autoincrements (a BIGINT primary key there would not).
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A member who has used the bot. Discord's user id is the key; no name is stored."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    journey_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Kept once created, so a check-in costs one request instead of two.
    dm_channel_id: Mapped[int | None] = mapped_column(BigInteger)


class GuildSettings(Base):
    """What moderators chose for their server. A missing row means the defaults."""

    __tablename__ = "guild_settings"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # Where public output goes: shared reflections and the weekly post.
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    checkins_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whether the bot answers messages that mention it here (`/config chat`).
    chat_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Server defaults as migration 0005 made them, so a schema made from these models is the
    # migrated one (db.migrate makes a new database so).
    weekly_post_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    weekly_weekday: Mapped[int] = mapped_column(
        SmallInteger, default=0, server_default="0"
    )  # 0 = Monday
    weekly_hour: Mapped[int] = mapped_column(SmallInteger, default=17, server_default="17")
    weekly_timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # The points' rotation.
    weekly_posts_made: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Why the bot switched the weekly post off by itself (channel gone, permission lost).
    weekly_problem: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConfigChange(Base):
    """The audit trail: who changed which setting of a server, when, from what to what."""

    __tablename__ = "config_changes"
    __table_args__ = (Index("ix_config_changes_guild_created", "guild_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    # None: the bot itself. Not `user_id`: the trail is the server's record, kept when a
    # moderator deletes their own data (/mydata forget), as Discord keeps its audit log.
    moderator_id: Mapped[int | None] = mapped_column(BigInteger)
    setting: Mapped[str] = mapped_column(String(20))
    old_value: Mapped[str] = mapped_column(String(200))
    new_value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GuildMember(Base):
    """A member used the bot in a server (for /stats); no name, nothing they wrote."""

    __tablename__ = "guild_members"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


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
        # Which keys still seal something, in a few index probes (start-up, rotate-key).
        Index("ix_reflections_key_id", "key_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    point: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))  # advice.journey.PromptKind
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # db.crypto.key_id of the key that sealed `body`; None: written before key ids were kept.
    key_id: Mapped[str | None] = mapped_column(String(16))
    comfort: Mapped[int | None] = mapped_column(SmallInteger)
    submission_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Decision(Base):
    """One `/decide`: where the member stood that day. Kept as a history, never overwritten."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_user_created", "user_id", "created_at"),
        Index("ix_decisions_key_id", "key_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    leaning: Mapped[int] = mapped_column(SmallInteger)  # advice.progress.Leaning
    reason: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted
    # The key that sealed `reason` (db.crypto.key_id); None without a reason, or from before.
    key_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LeasedJob:
    """The columns every timed job shares, so one claim with a lease (db.jobs) serves them all.

    A job is `pending` until done; a process claims it by setting `lease_until`, and a claim
    whose process died is taken over once the lease has passed.
    """

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # db.jobs.JobState
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)


# Partial indexes: their WHERE is a dialect's argument (sqlite_where, postgresql_where), and
# SQLAlchemy imports a dialect's whole package to check one, so a bot on SQLite would load
# PostgreSQL's (2 MiB). Each Database gives them the WHERE of its own dialect instead.
_PARTIAL_INDEXES: list[tuple[Index, TextClause]] = []


def partial_index(name: str, *columns: str, where: TextClause, unique: bool = False) -> Index:
    index = Index(name, *columns, unique=unique)
    _PARTIAL_INDEXES.append((index, where))
    return index


def use_dialect(name: str) -> None:
    """Give the partial indexes their WHERE in this dialect (its DDL, Alembic's comparison)."""
    for index, where in _PARTIAL_INDEXES:
        index.dialect_options[name]["where"] = where


NOTICE_PENDING = text("notice_pending = true")


class CheckinPlan(Base):
    """A member's choice of DM check-ins: a local wall-clock rule, and how delivery is going."""

    __tablename__ = "checkin_plans"
    __table_args__ = (
        # The few members to tell about a delivery problem, read by every process now and then.
        partial_index("ix_checkin_plans_notice_pending", "user_id", where=NOTICE_PENDING),
    )

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    cadence: Mapped[str] = mapped_column(String(12))  # advice.schedule.Cadence
    weekday: Mapped[int] = mapped_column(SmallInteger)
    hour: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(12))  # db.checkins.PlanStatus
    year_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    problem: Mapped[str | None] = mapped_column(Text)  # the last delivery problem, in plain words
    notice_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    last_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


PENDING_REGULAR = text("state = 'pending' AND point IS NULL")
PENDING_WITH_POINT = text("state = 'pending' AND point IS NOT NULL")


class Checkin(LeasedJob, Base):
    """One DM check-in: due at a UTC instant computed from the plan's rule, then delivered."""

    __tablename__ = "checkins"
    __table_args__ = (
        Index("ix_checkins_state_due", "state", "due_at"),
        Index("ix_checkins_user_state", "user_id", "state"),
        # At most one pending regular check-in per member (its point is chosen on delivery)
        # and one pending snoozed copy per point: a double press can never double a DM.
        partial_index("uq_checkins_pending_regular", "user_id", where=PENDING_REGULAR, unique=True),
        partial_index(
            "uq_checkins_pending_point", "user_id", "point", where=PENDING_WITH_POINT, unique=True
        ),
    )

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # advice.checkins.CheckinKind
    point: Mapped[str | None] = mapped_column(String(20))  # set on delivery (or by a snooze)
    prompt: Mapped[str | None] = mapped_column(String(10))  # advice.journey.PromptKind
    # When the rule said; `due_at` may be later (held out of quiet hours, or backing off).
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    response: Mapped[str | None] = mapped_column(String(10))  # reflected, snoozed, skipped, ...
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reflection_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("reflections.id", ondelete="SET NULL")
    )
    # The member said a DM was not an answer: later DMs are conversation, not more of it.
    replies_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WeeklyPost(LeasedJob, Base):
    """A server's "point of the week", due at the moderators' weekday and hour."""

    __tablename__ = "weekly_posts"
    __table_args__ = (
        Index("ix_weekly_posts_state_due", "state", "due_at"),
        # One post per server and slot, however many processes schedule it.
        UniqueConstraint("guild_id", "scheduled_at", name="uq_weekly_posts_guild_slot"),
    )

    guild_id: Mapped[int] = mapped_column(BigInteger)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    point: Mapped[str | None] = mapped_column(String(20))  # set on delivery
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
