"""The console's own commands (:time, :reply, :dms) and what it does with DMs and files.

A unit test of the console: the emulator is faked with the few methods the console uses, and the
bot's clock (``BotClock``) is a fake whose check-ins fall due at given instants and drop a DM
when the bot runs what is due, as the real loop would.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import console
from sandbox.console import run_console

BOT, MEMBER = 900, 7
START = datetime(2024, 5, 13, 7, 0, tzinfo=UTC)  # Monday, 09:00 in Berlin
IN_A_WEEK = START + timedelta(days=7)
SGR = re.compile(r"\x1b\[[0-9;]*m")


class FakeEmulator:
    """Just what ``_Console`` touches: DMs, requests, violations (none), registered commands,
    files, and a server with one quiet channel."""

    bot_user_id = BOT
    bot_name = "Crossroads"
    response_deadline = 3.0

    def __init__(self) -> None:
        self.requests: list[object] = []
        self.violations: list[object] = []
        self.dms: list[dict[str, Any]] = []
        self.files: dict[tuple[str, str], bytes] = {}
        self.dms_open: list[bool] = []
        self.next_id = 100

    def dm_messages(self, user_id: int) -> list[dict[str, Any]]:
        assert user_id == MEMBER
        return [dict(m) for m in self.dms]

    def guild_channels(self, guild_id: int) -> list[dict[str, Any]]:
        return [{"id": "2", "name": "general", "type": 0}]

    def channel_messages(self, channel_id: int) -> list[dict[str, Any]]:
        return []  # posts in channels: see test_console_members

    def registered_commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        return [] if guild_id else [{"name": "help", "description": "What this is"}]

    def set_dms_open(self, user_id: int, open: bool) -> None:
        assert user_id == MEMBER
        self.dms_open.append(open)

    async def send_dm(self, user_id: int, content: str) -> dict[str, Any]:
        message = self.post(MEMBER, content)
        # The bot hears it and answers, as the real one records a reply to a check-in.
        self.post(BOT, f"Saved your reflection: **{content}**")
        return message

    def attachment_bytes(self, message: dict[str, Any], filename: str) -> bytes:
        return self.files[(message["id"], filename)]

    def post(
        self, author: int, content: str, attachments: dict[str, bytes] | None = None
    ) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {
            "id": str(self.next_id),
            "author": {"id": str(author), "username": "Crossroads" if author == BOT else "you"},
            "content": content,
            "attachments": [
                {"id": str(self.next_id), "filename": name, "size": len(data)}
                for name, data in (attachments or {}).items()
            ],
            "components": [
                {
                    "type": 1,
                    "components": [
                        {"type": 2, "style": 1, "label": "Reflect", "custom_id": "reflect"}
                    ],
                }
            ]
            if author == BOT
            else [],
        }
        for name, data in (attachments or {}).items():
            self.files[(message["id"], name)] = data
        self.dms.append(message)
        self.requests.append(message)
        return message


class FakeBot:
    """The bot's side: its clock, the member's zone, and a check-in DM at each due instant
    once the bot runs what is due (``ran`` records where the clock was each time)."""

    def __init__(self, emu: FakeEmulator, dues: list[datetime] | None = None) -> None:
        self.emu = emu
        self.clock = START
        self.zone: str | None = "Europe/Berlin"
        self.zone_asked = 0
        self.dues = sorted(dues or [])
        self.moves: list[datetime] = []
        self.ran: list[datetime] = []

    def now(self) -> datetime:
        return self.clock

    async def next_due(self, until: datetime) -> datetime | None:
        return next((due for due in self.dues if due <= until), None)

    async def move_to(self, instant: datetime) -> datetime:
        self.moves.append(instant)
        self.clock = max(self.clock, instant)
        return self.clock

    async def run_due(self) -> None:
        self.ran.append(self.clock)
        while self.dues and self.dues[0] <= self.clock:
            due = self.dues.pop(0)
            stamp = int(due.timestamp())
            late = " (late)" if self.clock - due > timedelta(hours=1) else ""
            self.emu.post(
                BOT,
                f"# Check-in{late}\nDue <t:{stamp}:F>, next one <t:{stamp + 7 * 86400}:R>.",
                {"chart.png": b"\x89PNG chart"},
            )

    async def member_zone(self) -> str | None:
        self.zone_asked += 1
        return self.zone


def weekly(first: datetime, count: int) -> list[datetime]:
    return [first + timedelta(weeks=n) for n in range(count)]


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "SETTLE_QUIET_SECONDS", 0.01)
    monkeypatch.setattr(console, "DM_POLL_SECONDS", 0.01)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def session(
    script: list[str],
    emu: FakeEmulator,
    bot: FakeBot | None = None,
    files: Path | None = None,
    stdout: io.StringIO | None = None,
) -> str:
    out = stdout or io.StringIO()
    await run_console(
        emu,  # type: ignore[arg-type]  # a fake with the methods the console uses
        guild_id=1,
        channel_id=2,
        user_id=MEMBER,
        stdin=io.StringIO("".join(line + "\n" for line in script)),
        stdout=out,
        clock=bot,
        member_zone=bot.member_zone if bot else None,
        files_dir=files,
    )
    return out.getvalue()


async def test_time_moves_the_clock_and_shows_the_check_in_in_local_time(tmp_path: Path) -> None:
    emu = FakeEmulator()
    bot = FakeBot(emu, [START + timedelta(days=7), START + timedelta(days=8, hours=12)])
    files = tmp_path / "files"
    text = await session([":time +7d", ":time +1d12h"], emu, bot, files)

    assert bot.moves[-1] == bot.clock == START + timedelta(days=8, hours=12)
    assert "🕒 It is now Monday 20 May 2024, 09:00 in Europe/Berlin." in text
    assert "🕒 It is now Tuesday 21 May 2024, 21:00 in Europe/Berlin." in text
    assert "✉ Direct message\n┌ Crossroads\n│ Check-in\n│ Due Monday, 20 May 2024 09:00" in text
    assert "next one in 7 days." in text
    shown = text[text.index("🕒") :]  # after the welcome, which names :in #reflections
    assert "<t:" not in shown and "#" not in shown and "\x1b[" not in shown  # clean text
    assert text.count("✉ Direct message") == 2
    assert "(no new direct messages)" not in text
    assert bot.zone_asked >= 4  # asked again before each rendering

    # Each chart is saved under a unique name, and its path is printed next to it.
    saved = sorted(files.iterdir())
    assert [p.name for p in saved] == ["101-chart.png", "102-chart.png"]
    assert saved[0].read_bytes() == b"\x89PNG chart"
    assert f"│ 📎 chart.png (10 bytes) → {saved[0]}" in text
    assert f"Files the bot sends you are saved in {files}." in text


async def test_time_can_repeat_to_walk_through_a_year() -> None:
    emu = FakeEmulator()
    bot = FakeBot(emu, weekly(START + timedelta(days=7), 4))
    text = await session([":time +1w x4"], emu, bot)
    assert sorted(set(bot.moves)) == weekly(START + timedelta(days=7), 4)
    assert [line.split(".")[-1].strip() for line in text.splitlines() if "🕒 It is" in line] == [
        "[1/4]",
        "[2/4]",
        "[3/4]",
        "[4/4]",
    ]
    assert "(4 new direct messages)" in text
    assert "📎 chart.png (10 bytes)\n" in text  # no files_dir: nothing saved, no path


async def test_time_stops_at_each_due_instant_so_each_arrives_on_time() -> None:
    emu = FakeEmulator()
    # Tuesday 18:00 in Berlin, and the Friday after at 12:00: both inside one step of a week.
    tuesday, friday = START + timedelta(days=1, hours=9), START + timedelta(days=4, hours=3)
    bot = FakeBot(emu, [friday, tuesday])
    text = await session([":time +1w"], emu, bot)
    assert bot.ran == [tuesday, friday, START + timedelta(weeks=1)]
    assert bot.moves == [tuesday, friday, START + timedelta(weeks=1)]
    assert "(late)" not in text
    # Each arrives under its own time, then the step ends where it was asked to.
    lines = [line for line in text.splitlines() if line.startswith(("🕒", "✉", "│ Due"))]
    assert lines == [
        "🕒 Tuesday 14 May 2024, 18:00 in Europe/Berlin",
        "✉ Direct message",
        "│ Due Tuesday, 14 May 2024 18:00, next one in 7 days.",
        "🕒 Friday 17 May 2024, 12:00 in Europe/Berlin",
        "✉ Direct message",
        "│ Due Friday, 17 May 2024 12:00, next one in 7 days.",
        "🕒 It is now Monday 20 May 2024, 09:00 in Europe/Berlin.",
    ]


async def test_down_jumps_and_the_bot_catches_up_late() -> None:
    emu = FakeEmulator()
    tuesday = START + timedelta(days=1, hours=9)
    bot = FakeBot(emu, [tuesday, tuesday + timedelta(days=1)])
    text = await session([":down +3d"], emu, bot)
    back = START + timedelta(days=3)
    assert bot.moves == bot.ran == [back]  # nothing ran while the bot was off
    assert (
        "🕒 The bot was off for 3 days. It is back on Thursday 16 May 2024, 09:00 in "
        "Europe/Berlin and catches up on what it missed." in text
    )
    assert text.count("Check-in (late)") == 2  # the fake sends both; the real bot only one
    assert ":down takes" not in text


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (":down +1d x3", "✗ say how long the bot is off, once, e.g. :down +3d"),
        (":down", "✗ say how far to move the clock"),
        (":down -1d", "✗ time only moves forward here"),
    ],
)
async def test_bad_down_gets_one_clear_line(line: str, says: str) -> None:
    emu = FakeEmulator()
    bot = FakeBot(emu)
    text = await session([line], emu, bot)
    assert says in text and bot.moves == []


async def test_a_job_the_bot_does_not_settle_does_not_hang_the_walk() -> None:
    emu = FakeEmulator()
    stuck = START + timedelta(hours=1)
    bot = FakeBot(emu)

    async def always(until: datetime) -> datetime | None:
        return stuck

    bot.next_due = always  # type: ignore[method-assign]
    text = await session([":time +1d"], emu, bot)
    assert bot.ran == [stuck, START + timedelta(days=1)]
    assert "🕒 It is now Tuesday 14 May 2024, 09:00 in Europe/Berlin." in text


async def test_time_next_goes_to_what_falls_due_next() -> None:
    emu = FakeEmulator()
    tuesday = START + timedelta(days=1, hours=9)
    bot = FakeBot(emu, [tuesday, tuesday + timedelta(weeks=1)])
    text = await session([":time next", ":time next x2", ":time next now"], emu, bot)
    week_on = tuesday + timedelta(weeks=1)
    assert bot.moves == [tuesday, tuesday, week_on, week_on]  # each due, then there
    assert "🕒 It is now Tuesday 14 May 2024, 18:00 in Europe/Berlin." in text
    assert "🕒 It is now Tuesday 21 May 2024, 18:00 in Europe/Berlin.  [1/2]" in text
    assert "(nothing is due: no check-in or weekly post is scheduled)" in text
    assert "✗ say :time next, or :time next x3" in text
    assert text.count("✉ Direct message") == 2


async def test_down_into_quiet_hours_says_when_it_comes() -> None:
    emu = FakeEmulator()
    bot = FakeBot(emu, [START + timedelta(days=3, hours=22)])  # held till the next morning
    text = await session([":down +3d"], emu, bot)
    assert (
        "(nothing yet; the bot has something due Friday 17 May 2024, 07:00 in Europe/Berlin: "
        "`:time next` goes there)"
    ) in text
    assert "(no new direct messages)" not in text


async def test_time_follows_a_zone_change_and_reports_quiet_steps() -> None:
    emu = FakeEmulator()
    bot = FakeBot(emu, [START + timedelta(minutes=30)])
    bot.zone = None
    quiet = FakeBot(emu)
    text = await session([":time +3h"], emu, quiet)
    assert "(no new direct messages)" in text

    text = await session([":time +30m"], emu, bot)
    assert "It is now Monday 13 May 2024, 07:30 UTC (set your zone with /timezone)." in text
    assert "Due Monday, 13 May 2024 07:30" in text


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (":time -1d", "✗ time only moves forward here, e.g. :time +7d"),
        (":time soon", "✗ cannot read 'soon' as a duration, e.g. :time +7d"),
        (":time", "✗ say how far to move the clock, e.g. :time +7d"),
        (":dms maybe", "✗ say :dms off"),
        (":reply", "✗ say what to write, e.g. :reply"),
        (":nope", "✗ there is no console command :nope"),
    ],
)
async def test_bad_console_input_gets_one_clear_line(line: str, says: str) -> None:
    emu = FakeEmulator()
    bot = FakeBot(emu)
    text = await session([line], emu, bot)
    assert says in text
    assert bot.moves == [] and emu.dms == []


async def test_time_without_a_clock_says_it_cannot_move() -> None:
    text = await session([":time +7d"], FakeEmulator())
    assert "✗ Time cannot move here" in text


async def test_reply_is_sent_and_only_the_bots_answer_is_shown() -> None:
    emu = FakeEmulator()
    bot = FakeBot(emu)
    text = await session([":reply I like *thinking* about minds"], emu, bot)
    assert emu.dms[0]["content"] == "I like *thinking* about minds"
    assert text.count("✉ Direct message") == 1
    assert "│ Saved your reflection: I like thinking about minds" in text
    assert "┌ you" not in text  # the member's own message is never echoed as a DM


async def test_reply_with_no_answer_says_so() -> None:
    emu = FakeEmulator()
    emu.send_dm = lambda user_id, content: _silent(emu, content)  # type: ignore[method-assign]
    text = await session([":reply anyone there?"], emu, FakeBot(emu))
    assert "(the bot has not answered)" in text and "✉" not in text


async def _silent(emu: FakeEmulator, content: str) -> dict[str, Any]:
    return emu.post(MEMBER, content)


async def test_dms_off_and_on_tell_the_member_what_it_means() -> None:
    emu = FakeEmulator()
    bot = FakeBot(emu)
    text = await session([":dms off", ":time +1d", ":DMS ON", ":time +1d"], emu, bot)
    assert emu.dms_open == [False, True]
    assert "the bot can no longer DM you" in text
    assert "the bot can DM you again" in text
    closed, opened = text.split("the bot can DM you again")
    assert "(no new direct messages; your DMs are closed (`:dms on` opens them))" in closed
    assert "(no new direct messages)" in opened


async def test_a_failing_clock_is_reported_and_the_console_goes_on() -> None:
    emu = FakeEmulator()
    bot = FakeBot(emu)

    async def broken(instant: datetime) -> datetime:
        raise RuntimeError("clock is frozen")

    bot.move_to = broken  # type: ignore[method-assign]
    text = await session([":time +1d", ":dms off"], emu, bot)
    assert "✗ The bot's clock did not move: clock is frozen" in text
    assert "the bot can no longer DM you" in text  # the console went on


async def test_help_lists_console_commands_and_the_welcome_names_them() -> None:
    text = await session(["help"], FakeEmulator())
    welcome = " ".join(text.splitlines()[:2])
    assert "/help" in welcome and "quit" in welcome
    for command in (":time +7d", ":reply <text>", ":dms off", ":as bob", ":in #", ":channel"):
        assert command in welcome
    assert "/help — What this is" in text
    assert "Console commands" in text and ":time +1w x52" in text and ":dms off|on" in text
    assert ":as <name>" in text and ":in #channel" in text and ":channel [#name]" in text
    assert "appears as it arrives, under the channel's name" in text


async def test_old_dms_are_not_shown_again_and_buttons_come_from_the_latest_dm() -> None:
    emu = FakeEmulator()
    emu.post(BOT, "an old welcome")
    bot = FakeBot(emu, [IN_A_WEEK])
    text = await session([":time +7d"], emu, bot)
    assert "an old welcome" not in text
    assert "[1] Reflect" in text


async def test_a_terminal_gets_styles() -> None:
    emu = FakeEmulator()
    bot = FakeBot(emu, [IN_A_WEEK])
    text = await session([":time +7d"], emu, bot, stdout=Terminal())
    assert "\x1b[1;4mCheck-in\x1b[0m" in text  # the heading
    plain = SGR.sub("", text)
    assert "│ Due Monday, 20 May 2024 09:00" in plain


async def test_no_color_turns_styles_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    emu = FakeEmulator()
    text = await session([":time +7d"], emu, FakeBot(emu, [IN_A_WEEK]), stdout=Terminal())
    assert "\x1b[" not in text


async def test_a_failing_zone_lookup_falls_back_without_breaking_the_console() -> None:
    emu = FakeEmulator()
    bot = FakeBot(emu, [IN_A_WEEK])

    async def broken() -> str | None:
        raise RuntimeError("database is closed")

    bot.member_zone = broken  # type: ignore[method-assign]
    text = await session([":time +7d"], emu, bot)
    assert "UTC (set your zone with /timezone)" in text
    assert "Due Monday, 20 May 2024 07:00" in text


def test_whole_days_keep_the_members_time_of_day_across_daylight_saving() -> None:
    saturday_2230 = datetime(2027, 3, 27, 21, 30, tzinfo=UTC)  # 22:30 in Berlin, CET
    a_week = console.later(saturday_2230, timedelta(weeks=1), "Europe/Berlin")
    assert a_week == datetime(2027, 4, 3, 20, 30, tzinfo=UTC)  # 22:30 CEST: 167 hours on
    night = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)  # 01:30 CET, the night clocks go forward
    hours = console.later(night, timedelta(hours=3), "Europe/Berlin")
    assert hours == night + timedelta(hours=3)  # elapsed time: 05:30 CEST
    assert console.later(saturday_2230, timedelta(weeks=1), None) == saturday_2230 + timedelta(
        weeks=1
    )
