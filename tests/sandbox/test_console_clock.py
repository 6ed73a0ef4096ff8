"""The sandbox's clock with the real bot: ``python bot.py sandbox`` in this process, scripted.

``:time +1w x8`` walks the bot's clock from one due instant to the next, so every check-in and
weekly post arrives on time, as for a bot that kept running; ``:down +3d`` is the bot off for
three days, after which the member gets one check-in, marked late. What arrived is read back
from the console's output and from the sandbox's database.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import bot
from advice.progress import Leaning
from cogs.core.operator.settings import Settings
from db import Database
from db.crypto import TextCipher, load_or_create_key_file
from db.decisions import decision_history
from db.jobs import JobState
from db.models import Checkin, WeeklyPost
from sandbox import console

ON_TIME = timedelta(minutes=1)


def next_monday_9_utc() -> datetime:
    """A Monday 09:00 UTC (10:00 in Berlin) over a week ahead: the sandbox clock only moves
    forward, and the weekday and hour, not the date, decide what the script sees."""
    day = (datetime.now(UTC) + timedelta(days=8)).date()
    day += timedelta(days=-day.weekday() % 7)
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "SETTLE_QUIET_SECONDS", 0.05)
    monkeypatch.setenv("NO_COLOR", "1")


async def sandbox(tmp_path: Path, script: list[str]) -> tuple[str, Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}"
    settings = Settings(sandbox_database_url=url)
    out = io.StringIO()
    await bot.run_sandbox(
        settings,
        stdin=io.StringIO("".join(line + "\n" for line in script)),
        stdout=out,
        start=next_monday_9_utc(),
    )
    return out.getvalue(), Database(url)


SETUP = [
    "/timezone zone:Europe/Berlin",
    "/config channel channel:#general",
    "/config weekly-post enabled:true",  # Mondays 17:00 UTC, 18:00 in Berlin
    "/checkin start",  # at 10:00 on a Monday: today at 18:00, with the post
]


async def test_time_walks_so_each_checkin_and_weekly_post_arrives_on_time(
    tmp_path: Path,
) -> None:
    text, database = await sandbox(
        tmp_path,
        [*SETUP, ":time +1w x8", "/decide leaning:leaning yes why:Impact matters more than pay"],
    )
    cipher = TextCipher(load_or_create_key_file(tmp_path / "sandbox.key"))
    try:
        async with database.read() as session:
            [stance] = await decision_history(session, cipher, user_id=bot.SANDBOX_USER_ID)
            sent = list(
                await session.scalars(
                    select(Checkin).where(Checkin.sent_at.is_not(None)).order_by(Checkin.id)
                )
            )
            posts = list(
                await session.scalars(
                    select(WeeklyPost)
                    .where(WeeklyPost.state == JobState.DONE)
                    .order_by(WeeklyPost.id)
                )
            )
    finally:
        await database.dispose()

    assert "⚠" not in text and "✗" not in text, text[-3000:]
    # The first pass: six points, one a week from the first Monday, each on time.
    assert len(sent) == 6
    for checkin in sent:
        assert checkin.sent_at is not None and not checkin.late
        assert checkin.sent_at - checkin.scheduled_at < ON_TIME
    assert [(c.scheduled_at - sent[0].scheduled_at).days for c in sent] == [0, 7, 14, 21, 28, 35]
    assert text.count("Check-in · ") == 6 and "Late:" not in text
    # A weekly post every week of the eight, on time, none dropped.
    assert len(posts) == 8
    for post in posts:
        assert post.sent_at is not None and post.sent_at - post.scheduled_at < ON_TIME
    assert [(p.scheduled_at - posts[0].scheduled_at).days for p in posts] == [
        7 * week for week in range(8)
    ]
    assert text.count("Point of the week: ") == 8
    # Each shows under its own time, before the step it fell in ends.
    first_week = text[: text.index("[1/8]")]
    assert re.search(r"🕒 Monday \d+ \w+ \d{4}, 18:00 in Europe/Berlin\n", first_week)
    assert "(6 new direct messages and 8 posts in the server)" in text
    # The console speaks Discord: an option's value runs to the next option, unquoted.
    assert "Recorded: today you're at leaning yes." in text
    assert (stance.leaning, stance.reason) == (Leaning.LEANING_YES, "Impact matters more than pay")


async def test_down_gives_one_late_checkin_then_the_schedule_carries_on(tmp_path: Path) -> None:
    text, database = await sandbox(tmp_path, [*SETUP, ":down +3d", ":time +1w"])
    try:
        async with database.read() as session:
            sent = list(
                await session.scalars(
                    select(Checkin).where(Checkin.sent_at.is_not(None)).order_by(Checkin.id)
                )
            )
    finally:
        await database.dispose()

    assert "⚠" not in text and "✗" not in text, text[-3000:]
    # Off from Monday 10:00 to Thursday: Monday's 18:00 check-in comes when the bot is back,
    # once, marked late; next Monday's comes on time.
    before, rest = text.split("🕒 The bot was off for 3 days.")
    back, later = rest.split("\n🕒 ", 1)
    assert "Check-in · " not in before
    assert back.count("Check-in · ") == 1
    assert re.search(r"Late: this check-in was due Monday, \d+ \w+ \d{4} 18:00", back)
    assert "Point of the week" not in back  # three days late: skipped, not posted late
    assert later.count("Check-in · ") == 1 and "Late:" not in later
    assert later.count("Point of the week") == 1
    assert [c.late for c in sent] == [True, False]
    assert sent[1].sent_at is not None and sent[1].sent_at - sent[1].scheduled_at < ON_TIME


async def test_the_next_session_goes_on_from_its_time_and_its_dms_arrive_on_time(
    tmp_path: Path,
) -> None:
    # Monday 09:00 UTC: Tuesdays at 09:00 UTC, the weekday picked by name, as in Discord.
    first, database = await sandbox(
        tmp_path, ["/checkin start weekday:tuesday hour:9", ":time +1d"]
    )
    await database.dispose()
    # A new session: a new emulator, whose DM channels are new too; the clock stays moved.
    text, database = await sandbox(tmp_path, [":time +1w"])
    try:
        async with database.read() as session:
            sent = list(
                await session.scalars(
                    select(Checkin).where(Checkin.sent_at.is_not(None)).order_by(Checkin.id)
                )
            )
    finally:
        await database.dispose()
    assert "Every week on Tuesday at 09:00" in first
    assert first.count("Check-in · ") == 1 and text.count("Check-in · ") == 1
    assert "⚠" not in text and "✗" not in text and "Late:" not in text, text
    second = sent[1]
    assert second.sent_at is not None and second.sent_at - second.scheduled_at < ON_TIME
    assert second.attempts == 1  # sent at once, not after a failed try on a stale channel
