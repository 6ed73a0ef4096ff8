"""The journey in words: /progress and the year's summary show each point's first and latest
reflection the same way, whole when short and cut at a word when long, and keep within
Discord's limits whatever a member wrote."""

import random
from datetime import UTC, datetime, timedelta

import discord

from advice.content import load_content
from advice.progress import Leaning
from cogs.checkin.render import YEAR_FILENAME, summary_embeds, year_markdown
from cogs.core.charts.service import Chart
from cogs.core.summary import (
    EMBED_TOTAL_MAX,
    FIELD_MAX,
    FIELDS_MAX,
    TEXT_MOST,
    progress_embed,
)
from db.decisions import Stance
from db.journal import Mark
from db.progress import ProgressData

CONTENT = load_content()
SLUGS = list(CONTENT.slugs)
START = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)  # Monday 18:00 in Berlin
WEEK = timedelta(weeks=1)
CHART = Chart(b"\x89PNG", "19 reflections on all 6 points, from 7 Dec 2026 to 13 Dec 2027.")


def journal(
    texts: dict[str, list[tuple[str, int | None]]],
    stances: list[Stance] | None = None,
    *,
    zone: str | None = "Europe/Berlin",
) -> ProgressData:
    """ProgressData as the year's summary reads it: the first and latest text of every point."""
    marks, shown = [], {}
    at = START
    for slug, entries in texts.items():
        for index, (text, comfort) in enumerate(entries):
            mark = Mark(len(marks) + 1, slug, at, comfort)
            marks.append(mark)
            if index in (0, len(entries) - 1):
                shown[mark.id] = text
            at += WEEK
    marks.sort(key=lambda m: m.created_at)
    return ProgressData(START, zone, marks, shown, stances or [])


def text_of(embeds: list[discord.Embed]) -> str:
    parts = []
    for embed in embeds:
        parts += [embed.title or "", embed.description or "", embed.footer.text or ""]
        parts += [f"{field.name}\n{field.value}" for field in embed.fields]
    return "\n".join(parts)


def within_discords_limits(embeds: list[discord.Embed]) -> None:
    assert len(embeds) <= 10
    assert sum(len(embed) for embed in embeds) <= EMBED_TOTAL_MAX
    for embed in embeds:
        assert len(embed.fields) <= FIELDS_MAX
        assert len(embed.description or "") <= 4096
        assert len(embed.footer.text or "") <= 2048
        for field in embed.fields:
            assert len(field.name or "") <= 256 and len(field.value or "") <= FIELD_MAX


def test_the_year_shows_first_and_latest_comfort_and_decisions_in_order() -> None:
    data = journal(
        {
            "purpose": [
                ("I want to understand how minds work.", 2),
                ("Still minds, but teaching them now.", None),
                ("Minds, and the people who study them.", 4),
            ],
            "money": [("Enough is enough; two years of savings.", 3)],
        },
        [
            Stance(Leaning.UNDECIDED, "I don't know yet, honestly.", START - WEEK),
            Stance(Leaning.LEANING_YES, "The questions kept coming back.", START + 50 * WEEK),
        ],
    )
    embeds = summary_embeds(CONTENT, data, now=START + 53 * WEEK, chart=CHART)
    within_discords_limits(embeds)
    year, stood, end = embeds
    assert year.title == "Your year, and where it leaves you"
    purpose, money, unwritten = year.fields
    assert purpose.name == "1. 🧭 Know why you want it · 3 reflections · comfort 2 → 4"
    assert purpose.value is not None and money.value is not None
    assert "**First**" in purpose.value and "**Latest**" in purpose.value
    assert "> I want to understand how minds work." in purpose.value
    assert "> Minds, and the people who study them." in purpose.value
    assert "teaching" not in purpose.value  # only the first and the latest
    assert money.name == "4. 💰 Less money, longer horizon · comfort 3"
    assert "**Once**" in money.value and "> Enough is enough; two years of savings." in money.value
    assert unwritten.name == "Not written about yet" and "3. ⏳ Science takes decades" in str(
        unwritten.value
    )
    assert stood.description is not None
    undecided = stood.description.index("**undecided** · I don't know yet, honestly.")
    assert undecided < stood.description.index("**leaning yes** · The questions kept coming")
    assert "undecided → leaning yes (2 records)" in stood.description
    assert stood.image.url == "attachment://progress.png"
    assert stood.footer.text == CHART.description
    # It ends with the essay's question, and /decide.
    assert end.description is not None
    assert CONTENT.frame.closing in end.description and CONTENT.frame.title in end.description
    assert end.description.index("/decide") > end.description.index(CONTENT.frame.title)
    assert YEAR_FILENAME in text_of(embeds)


def test_long_texts_are_cut_at_a_word_and_short_ones_stay_whole() -> None:
    long = " ".join(f"word{i}" for i in range(400))
    data = journal({"purpose": [(long, None), ("Short and whole.", None)]})
    [year, *_] = summary_embeds(CONTENT, data, now=START + 53 * WEEK, chart=None)
    value = year.fields[0].value or ""
    first = value.split("\n")[1]
    assert first.startswith("> word0 word1") and first.endswith("…")
    assert first[2:-1].split()[-1] in long.split()  # no word cut in half
    assert TEXT_MOST - 20 <= len(first) <= TEXT_MOST  # long enough to recognise
    assert "> Short and whole." in value


def test_whatever_a_member_wrote_the_summary_and_progress_keep_to_discords_limits() -> None:
    rng = random.Random(7)
    slugs = [*SLUGS, *(f"gone-{n}" for n in range(6))]  # points since removed from the essay

    def text() -> str:
        words = ("".join(rng.choices("abcdefghij\n", k=rng.randint(1, 40))) for _ in range(800))
        return " ".join(words)[:4000]

    data = journal(
        {slug: [(text(), rng.randint(1, 5)) for _ in range(4)] for slug in slugs},
        [
            Stance(rng.choice(list(Leaning)), "why " * 250, START + n * timedelta(days=3))
            for n in range(60)
        ],
    )
    wordy = Chart(b"\x89PNG", "x " * 512)
    embeds = summary_embeds(CONTENT, data, now=START + 60 * WEEK, chart=wordy)
    within_discords_limits(embeds)
    assert len(embeds[0].fields) == 12
    assert "… 50 more" in (embeds[1].description or "")
    within_discords_limits([progress_embed(CONTENT, data, now=START + 60 * WEEK, chart=wordy)])


def test_progress_shows_the_same_then_vs_now_for_each_point_revisited() -> None:
    texts = {
        "purpose": [("Because the work outlives me.", 2), ("Because I like the questions.", 4)],
        "money": [("Enough is enough.", 3)],
    }
    # /progress reads texts only for points revisited; the year's summary for every point.
    data = journal(texts)
    revisited = ProgressData(
        data.journey_started_at,
        data.timezone,
        data.marks,
        {k: v for k, v in data.texts.items() if k != data.marks[-1].id},
        [],
    )
    embed = progress_embed(CONTENT, revisited, now=START + 20 * WEEK, chart=None)
    [purpose, lean] = embed.fields
    [year, *_] = summary_embeds(CONTENT, data, now=START + 20 * WEEK, chart=None)
    assert (purpose.name, purpose.value) == (year.fields[0].name, year.fields[0].value)
    assert lean.name == "Where you lean" and "no decision recorded yet" in str(lean.value)


def test_a_year_with_nothing_written_still_reads_and_asks_for_decide() -> None:
    data = journal({}, [Stance(Leaning.UNDECIDED, None, START)])
    year, stood, end = summary_embeds(CONTENT, data, now=START + 53 * WEEK, chart=CHART)
    assert "haven't written about any point" in (year.description or "")
    assert [f.name for f in year.fields] == ["Not written about yet"]
    assert "**undecided**" in (stood.description or "")
    assert "/decide" in (end.description or "")


def test_the_year_file_holds_the_texts_in_full_in_the_members_time() -> None:
    long = "A long reflection. " * 300
    data = journal(
        {"purpose": [(long, 2), ("middle", None), ("The latest, in full.", 4)]},
        [Stance(Leaning.LEANING_YES, "A reason, every word of it. " * 30, START + 2 * WEEK)],
    )
    markdown = year_markdown(CONTENT, data, now=START + 53 * WEEK)
    assert long.strip() in markdown and "The latest, in full." in markdown
    assert "middle" not in markdown
    # 17:00 UTC is 18:00 in Berlin in December.
    assert "### First: 7 December 2026, 18:00 · comfort 2/5" in markdown
    assert "Times are in Europe/Berlin" in markdown
    assert "- 21 December 2026, 18:00: **leaning yes**: " + "A reason, every word of it. " * 29 in (
        markdown
    )
    assert "## 6. 🔬 Out of the spotlight\n\nNot written about this year." in markdown
    assert markdown.rstrip().endswith("`/decide`.")
