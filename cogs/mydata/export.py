"""The /mydata export as files: JSON for machines, Markdown for people, within Discord's limit.

Discord refuses (413) a message whose files together exceed the interaction's
`attachment_size_limit`. An export always arrives anyway: both files as they are when they
fit; else one zip holding both; else several zips, each a complete export of its share of the
entries (both formats), one per message.
"""

import io
import json
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from advice.content import Content, UnknownPoint
from advice.errors import UserFacingError
from advice.progress import local_date, local_time, zone_label
from advice.schedule import Cadence, Rule

# Left of the limit for the rest of the request: its JSON payload and multipart framing.
REQUEST_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class ExportFile:
    filename: str
    data: bytes


class ExportTooLarge(UserFacingError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Your export does not fit in what Discord lets me send you here "
            f"({limit / 2**20:.1f} MiB a message), even split into parts, so it wasn't sent. "
            "Nothing was changed. Please tell the bot's operator."
        )


def export_markdown(content: Content, data: dict[str, Any]) -> str:
    """The export as a journal a person can read, in their own time zone: the reflections by
    point in the essay's order, the decisions, the check-ins and the rest (the JSON beside it
    is for machines, with exact UTC times)."""
    user = data.get("user") or {}
    zone = user.get("timezone")
    lines = [
        "# Your Crossroads journal",
        "",
        f"Exported {_at(data['exported_at'], zone)}. This is everything Crossroads stores about "
        f"you. Times are in {_zone_words(zone)}; the JSON file beside this one holds the same, "
        "with exact UTC times.",
    ]
    if "part" in data:
        lines += ["", f"Part {data['part']} of {data['parts']}: the other parts hold the rest."]
    lines += ["", *_about_you(user, zone)]
    lines += [
        "",
        f"## Reflections ({len(data['reflections'])})",
        *_reflections(content, data, zone),
    ]
    lines += ["", "## Decisions", ""]
    for decision in data["decisions"]:
        reason = f": {decision['reason']}" if decision["reason"] else ""
        lines.append(f"- {_at(decision['created_at'], zone)}: **{decision['leaning']}**{reason}")
    if not data["decisions"]:
        lines.append("None yet.")
    lines += ["", "## Check-ins", "", *_checkins(content, data, zone)]
    lines += ["", "## Servers you used Crossroads in", ""]
    for server in data["servers_used_in"]:
        lines.append(f"- Server {server['guild_id']}, since {_at(server['first_seen_at'], zone)}")
    lines += (
        [
            "",
            "Kept only so a server's `/stats` can count you there; never your name or anything "
            "you wrote.",
        ]
        if data["servers_used_in"]
        else ["None."]
    )
    if data["settings_changes_made"]:
        lines += ["", "## Settings you changed as a moderator", ""]
        for change in data["settings_changes_made"]:
            lines.append(
                f"- {_at(change['created_at'], zone)}, server {change['guild_id']}: "
                f"{change['setting']} from `{change['old_value']}` to `{change['new_value']}`"
            )
        lines += [
            "",
            "These are the server's record of who changed what: `/mydata forget` leaves them.",
        ]
    known = {*MARKDOWN_SECTIONS, "format", "exported_at", "stored_in", "part", "parts"}
    for section in [name for name in data if name not in known]:  # a table added later
        lines += ["", f"## {section.replace('_', ' ').capitalize()}", ""]
        rows = data[section] if isinstance(data[section], list) else [data[section]]
        lines += [f"- {json.dumps(row, ensure_ascii=False)}" for row in rows if row is not None]
        lines += [] if any(row is not None for row in rows) else ["None."]
    return "\n".join(lines) + "\n"


MARKDOWN_SECTIONS = (
    "user",
    "reflections",
    "decisions",
    "checkin_plan",
    "checkins",
    "servers_used_in",
    "settings_changes_made",
)
PLAN_STATES = {
    "active": "on",
    "paused": "paused",
    "stopped": "stopped by you",
    "unreachable": "stopped: Discord refused my direct messages to you",
    "finished": "your year is complete",
}
ANSWERS = {
    "reflected": "you answered",
    "snoozed": "snoozed for a day",
    "skipped": "skipped",
    "stopped": "you stopped check-ins here",
}


def _instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _at(iso: str, zone: str | None, *, with_zone: bool = True) -> str:
    return local_time(_instant(iso), zone, with_zone=with_zone)


def _zone_words(zone: str | None) -> str:
    label = zone_label(zone)
    return f"your time zone, {label}" if label == zone else "UTC (`/timezone` sets yours)"


def _about_you(user: dict[str, Any], zone: str | None) -> list[str]:
    if not user:
        return ["Nothing is stored about you."]
    lines = [f"- Time zone: {zone or 'not set'}"]
    lines.append(f"- First used Crossroads: {_at(user['created_at'], zone)}")
    started = user.get("journey_started_at")
    lines.append(f"- Journey started: {_at(started, zone) if started else 'not yet'}")
    channel = user.get("dm_channel_id")
    lines.append(
        f"- Our direct messages: channel {channel}, kept so a check-in costs one request"
        if channel
        else "- Our direct messages: none opened yet"
    )
    return lines


def _reflections(content: Content, data: dict[str, Any], zone: str | None) -> list[str]:
    """By point in the essay's order (points since removed after), oldest first in each."""
    answered = {
        checkin["reflection_id"]: checkin
        for checkin in data["checkins"]
        if checkin.get("reflection_id") is not None and checkin.get("sent_at")
    }
    by_point: dict[str, list[dict[str, Any]]] = {}
    for entry in data["reflections"]:
        by_point.setdefault(entry["point"], []).append(entry)
    order = [*content.slugs, *sorted(set(by_point) - set(content.slugs))]
    lines: list[str] = []
    for slug in (slug for slug in order if slug in by_point):
        lines += ["", f"### {_heading(content, slug)}"]
        for entry in sorted(by_point[slug], key=lambda e: (_instant(e["created_at"]), e["id"])):
            marks = ["first reflection" if entry["kind"] == "first" else "revisit"]
            checkin = answered.get(entry["id"])
            if checkin is not None:
                marks.append(f"reply to the check-in of {_day(checkin['sent_at'], zone)}")
            if entry["comfort"]:
                marks.append(f"comfort {entry['comfort']}/5")
            lines += ["", f"#### {_at(entry['created_at'], zone)} · {' · '.join(marks)}", ""]
            if entry["edited_at"]:
                lines += [f"*Edited {_at(entry['edited_at'], zone)}*", ""]
            lines.append(entry["text"])
    return lines or ["", "None yet."]


def _checkins(content: Content, data: dict[str, Any], zone: str | None) -> list[str]:
    plan = data["checkin_plan"]
    if plan is None:
        lines = ["You have no check-ins (`/checkin start` begins them)."]
    else:
        rule = Rule(Cadence(plan["cadence"]), plan["weekday"], plan["hour"], zone)
        status = PLAN_STATES.get(plan["status"], plan["status"])
        if plan["status"] == "paused" and plan["paused_until"]:
            status += f" until {_at(plan['paused_until'], zone)}"
        lines = [
            f"- Schedule: {rule.describe()} ({zone_label(zone)})",
            f"- Status: {status}",
            f"- Year started: {_at(plan['year_started_at'], zone)}",
        ]
        if plan["problem"]:
            lines.append(f"- Last delivery problem: {plan['problem']}")
    rows = [c for c in data["checkins"] if c["sent_at"] or c["state"] in ("pending", "failed")]
    if rows:
        lines += [
            "",
            f"| When ({zone_label(zone)}) | Check-in | What happened |",
            "|---|---|---|",
        ]
        for checkin in rows:
            when = _at(checkin["sent_at"] or checkin["due_at"], zone, with_zone=False)
            lines.append(f"| {when} | {_what(content, checkin)} | {_outcome(checkin)} |")
    left = len(data["checkins"]) - len(rows)
    if left:
        lines += [
            "",
            f"{left} more were planned and never sent (stopped, moved, or nothing was due "
            "then); the JSON lists them.",
        ]
    return lines


def _what(content: Content, checkin: dict[str, Any]) -> str:
    if checkin["kind"] == "summary":
        return "your year's summary"
    if checkin["point"] is None:
        return "a check-in (its point is chosen when it is sent)"
    look = " (revisit)" if checkin["prompt"] == "revisit" else ""
    return _heading(content, checkin["point"]) + look


def _outcome(checkin: dict[str, Any]) -> str:
    if checkin["state"] == "pending":
        return "next; not sent yet"
    if not checkin["sent_at"]:
        return "not delivered"
    sent = "sent late" if checkin["late"] else "sent"
    answer = ANSWERS.get(checkin["response"] or "", checkin["response"])
    return f"{sent}; {answer}" if answer else sent


def _heading(content: Content, slug: str) -> str:
    try:
        return content.point(slug).heading
    except UnknownPoint:
        return slug


def _day(iso: str, zone: str | None) -> str:
    return local_date(_instant(iso), zone)


def export_messages(
    content: Content, data: dict[str, Any], *, name: str, limit: int
) -> list[list[ExportFile]]:
    """The files of each message to send, every message's files within `limit` bytes.

    CPU-bound for a large journal (encoding and compressing megabytes): run it in a thread.
    """
    budget = limit - REQUEST_OVERHEAD
    if budget <= 0:
        raise ExportTooLarge(limit)
    plain = _formats(content, data, name)
    if sum(len(f.data) for f in plain) <= budget:
        return [plain]
    whole = _zip(f"{name}.zip", plain)
    if len(whole.data) <= budget:
        return [[whole]]
    # Parts of about equal size, more of them until each fits (compression varies).
    count = math.ceil(len(whole.data) / budget)
    most = max(len(data["reflections"]), len(data["decisions"]))
    while count <= most:
        parts = [
            _zip(f"{stem}.zip", _formats(content, part, stem))
            for stem, part in _split(data, count, name)
        ]
        largest = max(len(p.data) for p in parts)
        if largest <= budget:
            return [[part] for part in parts]
        count = max(count + 1, math.ceil(count * largest / budget))
    raise ExportTooLarge(limit)


def _formats(content: Content, data: dict[str, Any], stem: str) -> list[ExportFile]:
    return [
        ExportFile(f"{stem}.json", json.dumps(data, ensure_ascii=False, indent=2).encode()),
        ExportFile(f"{stem}.md", export_markdown(content, data).encode()),
    ]


# A fast deflate: on a large journal level 6 takes several times as long for a few per cent
# less, and it is the upload limit, not the last per cent, that decides how many parts it takes.
COMPRESS_LEVEL = 3


def _zip(filename: str, files: list[ExportFile]) -> ExportFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(
        buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
    ) as archive:
        for file in files:
            archive.writestr(file.filename, file.data)
    return ExportFile(filename, buffer.getvalue())


def _split(data: dict[str, Any], count: int, name: str) -> list[tuple[str, dict[str, Any]]]:
    """`count` exports, each with its share of the reflections and decisions, in order."""
    reflections = _chunks(data["reflections"], count, "text")
    decisions = _chunks(data["decisions"], count, "reason")
    return [
        (
            f"{name}-part-{number}-of-{count}",
            {**data, "part": number, "parts": count, "reflections": mine, "decisions": theirs},
        )
        for number, (mine, theirs) in enumerate(zip(reflections, decisions, strict=True), 1)
    ]


def _chunks(items: Sequence[dict[str, Any]], count: int, text: str) -> list[list[dict[str, Any]]]:
    """`items` cut into `count` runs (some maybe empty) of about equal text, order kept."""
    weights = [100 + len(item[text] or "") for item in items]  # 100: the fields around it
    target = sum(weights) / count
    chunks: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    filled = 0.0
    for item, weight in zip(items, weights, strict=True):
        index = min(count - 1, int((filled + weight / 2) // target))
        chunks[index].append(item)
        filled += weight
    return chunks
