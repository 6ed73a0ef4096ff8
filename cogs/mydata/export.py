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
from typing import Any

from advice.content import Content, UnknownPoint
from advice.errors import UserFacingError

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
    """The export as a document a person can read (the JSON is for machines)."""
    lines = [
        "# Your Crossroads journal",
        f"Exported {data['exported_at']} (UTC). Everything Crossroads stores about you.",
    ]
    if "part" in data:
        lines.append(f"Part {data['part']} of {data['parts']}: the other parts hold the rest.")
    lines += [
        "",
        f"- Time zone: {data['user']['timezone'] or 'not set'}",
        f"- Journey started: {data['user']['journey_started_at'] or 'not yet'}",
        "",
        "## Reflections",
    ]
    for entry in data["reflections"]:
        try:
            title = content.point(entry["point"]).heading
        except UnknownPoint:
            title = entry["point"]
        rating = f", comfort {entry['comfort']}/5" if entry["comfort"] else ""
        edited = f", edited {entry['edited_at']}" if entry["edited_at"] else ""
        lines += [
            "",
            f"### {title}",
            f"*{entry['created_at']} ({entry['kind']} reflection{rating}{edited})*",
            "",
            entry["text"],
        ]
    if not data["reflections"]:
        lines += ["", "None yet."]
    lines += ["", "## Decisions"]
    for decision in data["decisions"]:
        reason = f": {decision['reason']}" if decision["reason"] else ""
        lines.append(f"- {decision['created_at']}: **{decision['leaning']}**{reason}")
    if not data["decisions"]:
        lines.append("None yet.")
    return "\n".join(lines) + "\n"


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
