"""What check-ins look like: the welcome, each DM, its buttons, the status and the year's end."""

import io
from datetime import datetime

import discord

from advice import progress
from advice.checkins import REPLY_WINDOW
from advice.content import Content, Point
from advice.journey import PromptKind
from advice.progress import coverage, decision_trend, local_date, local_time
from advice.schedule import QUIET_FROM_HOUR, QUIET_UNTIL_HOUR, Rule
from cogs.core import summary
from cogs.core.charts.service import CHART_FILENAME, Chart
from cogs.core.entries import rating_buttons
from cogs.core.routing import RenderedView, RoutedButton
from cogs.core.style import PERSONAL_COLOUR, when
from db.checkins import PlanStatus
from db.journal import Entry
from db.models import Checkin, CheckinPlan
from db.progress import ProgressData

EARLIER_MAX = 900  # two earlier reflections fit an embed with room to spare
REFLECT, SNOOZE, SKIP, STOP = "checkin-reflect", "checkin-snooze", "checkin-skip", "checkin-stop"
NOT_AN_ANSWER = "checkin-not"  # (owner, check-in, entry, message): 94 characters at most
REPLY_HOURS = int(REPLY_WINDOW.total_seconds() // 3600)


def zone_label(zone_name: str | None) -> str:
    return zone_name or "UTC, until you set your time zone"


def schedule_line(rule: Rule) -> str:
    described = rule.describe()
    return f"{described[0].upper()}{described[1:]} ({zone_label(rule.zone_name)})"


def welcome_embed(content: Content, rule: Rule, first_at: datetime) -> discord.Embed:
    lines = [
        f"*{content.frame.answer}* This is that year, a little at a time.",
        "",
        f"• **{schedule_line(rule)}** I'll send one point and one question.",
        "• First every point once, in the essay's order. Then each comes back around 3 and 6 "
        "months later, with what you wrote beside it, so you can see what changed. After 12 "
        "months, a summary of your year.",
        f"• Answer with **Reflect**, or simply reply here within {REPLY_HOURS} hours.",
        "• Every check-in has **Snooze** (one day), **Skip** and **Stop**. "
        "`/checkin pause`, `/checkin stop` and `/checkin status` work any time.",
        f"• Nothing arrives between {QUIET_FROM_HOUR}:00 and {QUIET_UNTIL_HOUR:02d}:00 your time.",
        "",
        f"Your first check-in: {when(first_at)}.",
    ]
    embed = discord.Embed(
        title="Welcome to your year of check-ins",
        description="\n".join(lines),
        colour=PERSONAL_COLOUR,
    )
    embed.set_footer(text="Only you can see these messages and what you write.")
    return embed


def checkin_embed(
    content: Content,
    point: Point,
    prompt: PromptKind,
    *,
    earlier: list[Entry],
    late_since: datetime | None,
) -> discord.Embed:
    lines = []
    if late_since is not None:
        lines.append(f"*Late: this check-in was due {when(late_since)}.*\n")
    if prompt is PromptKind.FIRST:
        lines.append(f"> {point.summary}\n")
        lines += [f"**{question}**" for question in point.prompts]
        title = f"Check-in · {point.heading}"
    else:
        lines.append("This point is back. Read what you wrote, then:\n")
        lines.append(f"**{point.revisit_prompt}**")
        title = f"Revisit · {point.heading}"
    embed = discord.Embed(title=title[:256], description="\n".join(lines), colour=PERSONAL_COLOUR)
    for entry, label in _then_and_latest(earlier):
        rating = f" · {entry.comfort}/5" if entry.comfort else ""
        text = entry.text if len(entry.text) <= EARLIER_MAX else entry.text[:EARLIER_MAX] + "…"
        stamp = f"<t:{int(entry.created_at.timestamp())}:D>"
        embed.add_field(name=label, value=f"*{stamp}{rating}*\n{text}", inline=False)
    embed.set_footer(
        text=f"Point {point.number} of {len(content.points)} · Press Reflect, or reply here "
        f"within {REPLY_HOURS} hours. Only you can see this."
    )
    return embed


def _then_and_latest(earlier: list[Entry]) -> list[tuple[Entry, str]]:
    if not earlier:
        return []
    if len(earlier) == 1:
        return [(earlier[0], "What you wrote then")]
    return [(earlier[0], "What you wrote first"), (earlier[-1], "Most recently")]


def checkin_view(checkin_id: int) -> discord.ui.View:
    view = RenderedView()
    view.add_item(
        RoutedButton(
            route=REFLECT,
            args=(checkin_id,),
            label="Reflect",
            emoji="✍️",
            style=discord.ButtonStyle.primary,
        )
    )
    for route, label in ((SNOOZE, "Snooze (1 day)"), (SKIP, "Skip")):
        view.add_item(
            RoutedButton(
                route=route, args=(checkin_id,), label=label, style=discord.ButtonStyle.secondary
            )
        )
    view.add_item(
        RoutedButton(route=STOP, args=(checkin_id,), label="Stop", style=discord.ButtonStyle.danger)
    )
    return view


YEAR_FILENAME = "your-year.md"


def summary_embeds(
    content: Content, data: ProgressData, *, now: datetime, chart: Chart | None
) -> list[discord.Embed]:
    """The year's close, in one message: what the member wrote first and latest on each
    point and how their comfort moved, their decisions in order, the chart, and the question
    the essay ends on. `data` is read with every point's texts and the decisions' reasons;
    the texts in full go beside it as a file (`year_file`)."""
    written = summary.stories(content, data, every_point=True)
    unwritten = [p.heading for p in content.points if p.slug not in {s.slug for s in written}]
    covered = coverage({mark.point for mark in data.marks}, content.slugs)
    count = len(data.marks)
    opening = (
        f"A year ago you set out to answer one question: *{content.frame.title}*\n\n"
        f"**Points reflected on:** {covered.bar()} · {count} "
        f"{'reflection' if count == 1 else 'reflections'}\n"
    )
    if written:
        what = "what you wrote on each point"
        if any(story.latest is not None for story in written):
            what += ", first and latest"
        if any(story.comfort for story in written):
            what += ", and how your comfort moved"
        opening += f"Here is {what}. The full texts are in `{YEAR_FILENAME}`."
    else:
        opening += "You haven't written about any point yet; the year's questions are still open."
    lines = summary.decision_lines(data.stances)
    stood = (
        f"**Your path:** {decision_trend([(s.created_at, s.leaning) for s in data.stances])}\n"
        + "\n".join(f"• {line}" for line in lines)
        if lines
        else "You haven't recorded where you stand yet."
    )
    closing = (
        f"*{content.frame.closing}*\n\n**{content.frame.title}** Where do you stand now? "
        "Record it with `/decide`.\n\nCheck-ins for this year are complete. "
        "`/checkin start` begins another year."
    )

    def build(limit: int) -> list[discord.Embed]:
        year = discord.Embed(
            title="Your year, and where it leaves you",
            description=opening,
            colour=PERSONAL_COLOUR,
        )
        for story in written:
            name, value = summary.point_field(content, story, limit)
            year.add_field(name=name, value=value, inline=False)
        if unwritten:
            year.add_field(
                name="Not written about yet",
                value=("\n".join(unwritten) + "\n`/reflect` takes any of them, any time.")[
                    : summary.FIELD_MAX
                ],
                inline=False,
            )
        decisions = discord.Embed(
            title="Where you stood along the way",
            description=stood[: summary.DESCRIPTION_MAX],
            colour=PERSONAL_COLOUR,
        )
        if chart is not None:
            decisions.set_image(url=f"attachment://{CHART_FILENAME}")
            decisions.set_footer(text=summary.chart_words(chart))
        end = discord.Embed(description=closing, colour=PERSONAL_COLOUR)
        end.set_footer(text="Only you can see this.")
        return [year, decisions, end]

    return summary.fit(build)


def year_markdown(content: Content, data: ProgressData, *, now: datetime) -> str:
    """The year's summary as a document: every point's first and latest reflection in full,
    and every decision with its reason, in the member's own time."""
    zone = data.timezone
    written = {story.slug: story for story in summary.stories(content, data, every_point=True)}
    start = data.journey_started_at or min((m.created_at for m in data.marks), default=now)
    lines = [
        "# Your year with Crossroads",
        "",
        f"*{content.frame.title}* {content.frame.answer}",
        "",
        f"From {local_date(start, zone)} to {local_date(now, zone)}. Times are in "
        f"{progress.zone_label(zone)}. Only you have this file; `/mydata export` has every "
        "reflection.",
    ]
    headings = {point.slug: point.heading for point in content.points}
    for slug in [*content.slugs, *(s for s in written if s not in headings)]:
        lines += ["", f"## {headings.get(slug, slug)}", ""]
        story = written.get(slug)
        if story is None:
            lines.append("Not written about this year.")
            continue
        facts = [f"{story.count} {'reflection' if story.count == 1 else 'reflections'}"]
        if story.comfort:
            facts.append(f"comfort {story.comfort}")
        lines.append(" · ".join(facts))
        pairs = (
            [("Once", story.first)]
            if story.latest is None
            else [
                ("First", story.first),
                ("Latest", story.latest),
            ]
        )
        for label, snapshot in pairs:
            rating = f" · comfort {snapshot.comfort}/5" if snapshot.comfort else ""
            lines += [
                "",
                f"### {label}: {local_time(snapshot.at, zone, with_zone=False)}{rating}",
                "",
                snapshot.text,
            ]
    lines += ["", "## Where you stood", ""]
    for stance in data.stances:
        reason = f": {stance.reason}" if stance.reason else ""
        lines.append(
            f"- {local_time(stance.created_at, zone, with_zone=False)}: "
            f"**{stance.leaning.label}**{reason}"
        )
    if not data.stances:
        lines.append("No decision recorded yet.")
    lines += [
        "",
        "---",
        "",
        f"*{content.frame.closing}* **{content.frame.title}** Record where you stand with "
        "`/decide`.",
    ]
    return "\n".join(lines) + "\n"


def year_file(content: Content, data: ProgressData, *, now: datetime) -> discord.File:
    text = year_markdown(content, data, now=now)
    return discord.File(
        io.BytesIO(text.encode()), YEAR_FILENAME, description="Your year's reflections in full"
    )


def status_embed(
    plan: CheckinPlan,
    rule: Rule,
    *,
    status: PlanStatus,
    pending: Checkin | None,
    last: Checkin | None,
    year_ends_at: datetime,
) -> discord.Embed:
    state = {
        PlanStatus.ACTIVE: "On",
        PlanStatus.PAUSED: f"Paused until {when(plan.paused_until)}" if plan.paused_until else "",
        PlanStatus.STOPPED: "Stopped. `/checkin start` turns them on again.",
        PlanStatus.UNREACHABLE: "Stopped: I can't send you direct messages.",
        PlanStatus.FINISHED: "Your year is complete. `/checkin start` begins another.",
    }[status]
    embed = discord.Embed(title="Your check-ins", description=state, colour=PERSONAL_COLOUR)
    embed.add_field(name="Schedule", value=schedule_line(rule), inline=False)
    embed.add_field(name="Next check-in", value=_next_line(status, pending), inline=False)
    if last is not None and last.sent_at is not None:
        timing = "late" if last.late else "on time"
        value = f"{when(last.sent_at)}, {timing}"
    else:
        value = "None yet."
    embed.add_field(name="Last delivered", value=value, inline=False)
    if plan.problem:
        embed.add_field(name="Delivery problem", value=plan.problem[:1024], inline=False)
    embed.set_footer(text="Only you can see this.")
    if status in (PlanStatus.ACTIVE, PlanStatus.PAUSED):
        embed.add_field(
            name="Your year", value=f"Ends {when(year_ends_at)} with a summary.", inline=False
        )
    return embed


def _next_line(status: PlanStatus, pending: Checkin | None) -> str:
    if status == PlanStatus.UNREACHABLE:
        return (
            "None: Discord refused my last direct message to you. " + ALLOW_DMS + " Then use "
            "`/checkin resume`."
        )
    if pending is None:
        return "None."
    kind = "your year's summary" if pending.kind == "summary" else "a check-in"
    # While a failed send backs off, its lease says when it is tried again.
    at = max(pending.due_at, pending.lease_until or pending.due_at)
    return f"{when(at)}: {kind}."


ALLOW_DMS = (
    "To allow them, open the server's menu (its name at the top of the channel list) › "
    "**Privacy Settings** and turn on **Direct Messages**, or in **User Settings › Privacy & "
    "Safety** allow direct messages from server members."
)


def reply_view(owner: int, *, checkin_id: int, entry_id: int, message_id: int) -> discord.ui.View:
    """Under a DM kept as a check-in's answer: rate it, or say it wasn't an answer."""
    view = RenderedView()
    for each in rating_buttons(owner, entry_id):
        view.add_item(each)
    view.add_item(
        RoutedButton(
            route=NOT_AN_ANSWER,
            args=(owner, checkin_id, entry_id, message_id),
            label="That wasn't an answer",
            style=discord.ButtonStyle.secondary,
            row=1,
        )
    )
    return view
