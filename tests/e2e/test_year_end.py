"""A year of check-ins answered by DM reply, end to end, on SQLite and PostgreSQL.

A member in Berlin starts weekly check-ins and answers every one by simply replying in the
DM, over more than 52 weeks, rating only two of the replies. The year's summary must chart
every reply (the unrated ones too), and its words must show what they wrote first and last
on each point, how their comfort moved, and the decisions they recorded along the way.
"""

import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from advice.content import Content
from cogs.core.charts.samples import Journey
from cogs.core.charts.service import Chart, journey_of
from db.models import Reflection
from db.progress import ProgressData
from tests.e2e.conftest import World, answer, text_of
from tests.e2e.test_checkin_year import kind_of, next_due_for, tick
from tests.e2e.test_checkins import bot_dms_after

WORDS = {
    "purpose": "minds and how they learn",
    "autonomy": "choosing my own questions",
    "decades": "a ten year topic",
    "money": "two years of savings",
    "fame": "likes do not matter",
    "obscurity": "small problems are fine",
}
# The first reply on purpose is long: the summary shows its opening, the file all of it.
LONG = " ".join(
    f"Sentence {n} about why research, and what I would give up for it." for n in range(12)
)


def reply_text(slug: str, round_: int) -> str:
    text = f"{slug.capitalize()}, round {round_}: {WORDS[slug]} (reply {round_} of the year)."
    return f"{text} {LONG}" if (slug, round_) == ("purpose", 1) else text


async def rate(world: World, message: dict[str, Any], rating: int) -> None:
    routes = [
        component["custom_id"]
        for row in message["components"]
        for component in row["components"]
        if component.get("custom_id", "").startswith("cr:entry-rate:")
    ]
    [route] = [r for r in routes if r.endswith(f":{rating}")]
    rated = await (await world.emulator.click(world.alice, message, route)).message()
    assert f"Rated {rating}/5" in rated["content"]


async def test_a_year_answered_by_dm_ends_in_a_summary_that_shows_it(
    world_any_db: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, alice = world_any_db, world_any_db.alice
    charted: list[Journey] = []
    draw = world.bot.charts.chart

    async def chart_and_keep_its_inputs(
        data: ProgressData, content: Content, *, member: int | None = None
    ) -> Chart | None:
        charted.append(journey_of(data, content, now=world.clock.now()))
        return await draw(data, content, member=member)

    monkeypatch.setattr(world.bot.charts, "chart", chart_and_keep_its_inputs)

    await answer(world, alice, "timezone", zone="Europe/Berlin")
    await answer(
        world, alice, "decide", leaning="undecided", why="Too early to say; I need a year."
    )
    await answer(world, alice, "checkin start")
    began = world.clock.now()
    replies: dict[str, list[str]] = defaultdict(list)
    decided_again = False
    while True:
        due = await next_due_for(world, alice)
        assert due is not None and due < began + timedelta(days=400), "the year never ended"
        world.clock.set(max(due, world.clock.now()) + timedelta(seconds=30))
        assert await tick(world) == 1
        checkin = world.emulator.dm_messages(alice)[-1]
        kind, slug = kind_of(checkin)
        if kind == "summary":
            summary = checkin
            break
        assert slug is not None
        world.clock.advance(timedelta(minutes=50))
        replies[slug].append(reply_text(slug, len(replies[slug]) + 1))
        await world.emulator.send_dm(alice, replies[slug][-1])
        [kept] = await bot_dms_after(world, alice, count=1)
        assert "Saved as your reflection" in kept["content"]
        if slug == "purpose":  # rated, the others not: 2 at first, 4 from then on
            await rate(world, kept, 2 if len(replies[slug]) == 1 else 4)
        if not decided_again and world.clock.now() > began + timedelta(days=182):
            await answer(
                world, alice, "decide", leaning="leaning yes", why="The questions keep coming."
            )
            decided_again = True
    written = sum(len(texts) for texts in replies.values())
    assert world.clock.now() - began > timedelta(weeks=52)
    assert set(replies) == set(WORDS) and written >= 18
    assert all(len(texts) >= 3 for texts in replies.values())

    # The chart of the year was drawn from every reply, rated or not.
    journey = charted[-1]
    async with world.database.read() as session:
        stored = (
            await session.execute(
                select(Reflection.point, Reflection.created_at, Reflection.comfort)
                .where(Reflection.user_id == alice)
                .order_by(Reflection.created_at)
            )
        ).all()
    assert len(stored) == written
    at_summary = [(p, at) for p, at, _ in stored]
    assert sorted((m.slug, m.at) for m in journey.marks) == sorted(at_summary)
    unrated = written - len(replies["purpose"])
    assert sum(1 for m in journey.marks if m.comfort is None) == unrated > 0
    assert [s.leaning for s in journey.leanings] == [0, 1]
    assert summary["attachments"][0]["filename"] == "progress.png"
    year_words = summary["embeds"][1]["footer"]["text"]
    assert year_words.startswith(f"{written} reflections ({written - 6} of them revisits) on all 6")

    # Its words: first and last on each point, not what came between; comfort; decisions.
    shown = text_of(summary)
    for slug, texts in replies.items():
        first_words = texts[0].split(" (reply")[0]
        assert first_words in shown, slug
        assert texts[-1] in shown, slug
        for middle in texts[1:-1]:
            assert middle not in shown, (slug, middle)
    fields = {f["name"].split(" · ")[0]: f for f in summary["embeds"][0]["fields"]}
    purpose = fields["1. 🧭 Know why you want it"]
    assert purpose["name"].endswith(f"· {len(replies['purpose'])} reflections · comfort 2 → 4")
    assert "Sentence 3 about why research" in purpose["value"] and "…" in purpose["value"]
    assert "Sentence 11 about" not in purpose["value"]  # cut at a word, with "…"
    stood = summary["embeds"][1]["description"]
    assert stood.index("**undecided** · Too early to say; I need a year.") < stood.index(
        "**leaning yes** · The questions keep coming."
    )
    end = summary["embeds"][-1]["description"]
    content = world.bot.content
    assert content.frame.closing in end and content.frame.title in end and "/decide" in end
    # The texts in full beside it.
    year = world.emulator.attachment_bytes(summary, "your-year.md").decode()
    assert replies["purpose"][0] in year and replies["obscurity"][-1] in year
    assert "Too early to say; I need a year." in year

    # The export holds the year too: every reply marked as one, and every check-in.
    exported = await answer(world, alice, "mydata export")
    names = sorted(a["filename"] for a in exported["attachments"])
    data = json.loads(world.emulator.attachment_bytes(exported, names[0]))
    markdown = world.emulator.attachment_bytes(exported, names[1]).decode()
    assert len(data["reflections"]) == written
    assert sum(1 for c in data["checkins"] if c["sent_at"]) == written + 1  # and the summary
    assert markdown.count("reply to the check-in of") == written
    assert "- Schedule: every week on Monday at 18:00 (Europe/Berlin)" in markdown
    assert "| your year's summary | sent |" in markdown
