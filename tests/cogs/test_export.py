"""The export's files: plain when they fit, one zip, or zip parts that each fit the limit."""

import io
import json
import random
import zipfile
from typing import Any

import pytest

from advice.content import load_content
from cogs.mydata.export import REQUEST_OVERHEAD, ExportTooLarge, export_markdown, export_messages

CONTENT = load_content()


def export_of(texts: list[str], reasons: list[str]) -> dict[str, Any]:
    return {
        "format": 2,
        "exported_at": "2026-01-05T09:00:00+00:00",
        "user": {
            "id": "1",
            "timezone": None,
            "created_at": "2026-01-05T09:00:00+00:00",
            "journey_started_at": None,
            "dm_channel_id": None,
        },
        "reflections": [
            {
                "id": index,
                "point": "purpose",
                "kind": "first",
                "text": text,
                "comfort": None,
                "submission_key": None,
                "created_at": "2026-01-05T09:00:00+00:00",
                "edited_at": None,
            }
            for index, text in enumerate(texts)
        ],
        "decisions": [
            {
                "id": index,
                "leaning": "no",
                "reason": reason,
                "created_at": "2026-01-05T09:00:00+00:00",
            }
            for index, reason in enumerate(reasons)
        ],
        "checkin_plan": None,
        "checkins": [],
        "servers_used_in": [],
        "settings_changes_made": [],
    }


def noise(rng: random.Random, length: int) -> str:
    return "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(length))  # CJK: dense


def test_a_small_export_is_plain_json_and_markdown() -> None:
    [[json_file, markdown]] = export_messages(
        CONTENT, export_of(["short"], []), name="x", limit=10 * 2**20
    )
    assert (json_file.filename, markdown.filename) == ("x.json", "x.md")
    assert json.loads(json_file.data)["reflections"][0]["text"] == "short"


def test_a_compressible_export_over_the_limit_is_one_zip() -> None:
    data = export_of(["same words again " * 200] * 100, [])
    [[archive]] = export_messages(CONTENT, data, name="x", limit=REQUEST_OVERHEAD + 200_000)
    assert archive.filename == "x.zip"
    with zipfile.ZipFile(io.BytesIO(archive.data)) as opened:
        assert sorted(opened.namelist()) == ["x.json", "x.md"]


def test_an_export_too_large_for_one_zip_comes_in_parts_that_each_fit() -> None:
    rng = random.Random(1)
    texts, reasons = [noise(rng, 3000) for _ in range(60)], [noise(rng, 900) for _ in range(30)]
    limit = REQUEST_OVERHEAD + 150_000
    messages = export_messages(CONTENT, export_of(texts, reasons), name="x", limit=limit)
    assert len(messages) > 2
    got_texts: list[str] = []
    got_reasons: list[str] = []
    for number, [archive] in enumerate(messages, 1):
        assert len(archive.data) <= limit - REQUEST_OVERHEAD
        assert archive.filename == f"x-part-{number}-of-{len(messages)}.zip"
        with zipfile.ZipFile(io.BytesIO(archive.data)) as opened:
            part = json.loads(opened.read(archive.filename.replace(".zip", ".json")))
            markdown = opened.read(archive.filename.replace(".zip", ".md")).decode()
        assert (part["part"], part["parts"]) == (number, len(messages))
        assert f"Part {number} of {len(messages)}" in markdown
        got_texts += [r["text"] for r in part["reflections"]]
        got_reasons += [d["reason"] for d in part["decisions"]]
    assert (got_texts, got_reasons) == (texts, reasons)


def test_an_entry_larger_than_the_limit_is_explained() -> None:
    rng = random.Random(2)
    with pytest.raises(ExportTooLarge) as caught:
        export_messages(
            CONTENT, export_of([noise(rng, 4000)], []), name="x", limit=REQUEST_OVERHEAD + 1000
        )
    assert "MiB" in caught.value.message


def journal_export() -> dict[str, Any]:
    """A member in Berlin: two points, a check-in answered by reply, one pending, one never
    sent; a server, a setting changed as a moderator, and a table added after this test."""
    data = export_of([], ["Not yet."])
    data["exported_at"] = "2026-12-13T19:46:00+00:00"
    data["user"] |= {
        "timezone": "Europe/Berlin",
        "journey_started_at": "2026-12-06T21:00:00+00:00",
        "dm_channel_id": "1300000000000000099",
    }
    data["decisions"][0]["created_at"] = "2026-12-06T21:00:00+00:00"
    reflection = data["reflections"] = [
        {"id": 3, "point": "money", "kind": "first", "text": "Enough is enough.", "comfort": 3},
        {"id": 2, "point": "purpose", "kind": "revisit", "text": "Still minds.", "comfort": 4},
        {"id": 1, "point": "purpose", "kind": "first", "text": "Minds.", "comfort": None},
    ]
    for entry, at in zip(reflection, ("2026-12-10", "2027-03-08", "2026-12-07"), strict=True):
        entry |= {"created_at": f"{at}T17:30:00+00:00", "edited_at": None, "submission_key": None}
    reflection[1]["edited_at"] = "2027-03-09T08:00:00+00:00"
    data["checkin_plan"] = {
        "cadence": "weekly",
        "weekday": 0,
        "hour": 18,
        "status": "active",
        "year_started_at": "2026-12-06T21:00:00+00:00",
        "paused_until": None,
        "problem": None,
    }
    base = {"kind": "point", "prompt": "first", "late": False, "response": None}
    data["checkins"] = [
        base
        | {
            "id": 1,
            "point": "purpose",
            "state": "done",
            "sent_at": "2026-12-07T17:00:00+00:00",
            "due_at": "2026-12-07T17:00:00+00:00",
            "response": "reflected",
            "reflection_id": 1,
        },
        base
        | {
            "id": 2,
            "point": None,
            "state": "cancelled",
            "sent_at": None,
            "due_at": "2026-12-14T17:00:00+00:00",
            "reflection_id": None,
        },
        base
        | {
            "id": 3,
            "point": "autonomy",
            "state": "done",
            "sent_at": "2026-12-21T17:40:00+00:00",
            "due_at": "2026-12-21T17:00:00+00:00",
            "late": True,
            "response": "skipped",
            "reflection_id": None,
        },
        base
        | {
            "id": 4,
            "point": None,
            "state": "pending",
            "sent_at": None,
            "due_at": "2026-12-28T17:00:00+00:00",
            "reflection_id": None,
        },
    ]
    data["servers_used_in"] = [
        {"guild_id": "1300000000000000101", "first_seen_at": "2026-12-06T21:00:00+00:00"}
    ]
    data["settings_changes_made"] = [
        {
            "id": 9,
            "guild_id": "1300000000000000101",
            "setting": "channel",
            "old_value": "none",
            "new_value": "<#55>",
            "created_at": "2026-12-06T21:05:00+00:00",
        }
    ]
    data["reminders"] = [{"id": 1, "note": "a table added later"}]
    return data


def test_the_markdown_reads_as_a_journal_in_the_members_zone() -> None:
    markdown = export_markdown(CONTENT, journal_export())
    assert "Exported 13 December 2026, 20:46 (Europe/Berlin)." in markdown
    assert "- Journey started: 6 December 2026, 22:00 (Europe/Berlin)" in markdown
    # By point in the essay's order, oldest first in each, first and revisit and check-in
    # replies marked.
    purpose = markdown.index("### 1. 🧭 Know why you want it")
    money = markdown.index("### 4. 💰 Less money, longer horizon")
    first = markdown.index(
        "#### 7 December 2026, 18:30 (Europe/Berlin) · first reflection · reply to the "
        "check-in of 7 December 2026\n\nMinds."
    )
    revisit = markdown.index(
        "#### 8 March 2027, 18:30 (Europe/Berlin) · revisit · comfort 4/5\n\n"
        "*Edited 9 March 2027, 09:00 (Europe/Berlin)*\n\nStill minds."
    )
    assert purpose < first < revisit < money
    assert "- 6 December 2026, 22:00 (Europe/Berlin): **no**: Not yet." in markdown
    # The check-ins: the schedule and what happened, in the member's time.
    assert "- Schedule: every week on Monday at 18:00 (Europe/Berlin)" in markdown
    assert (
        "| 7 December 2026, 18:00 | 1. 🧭 Know why you want it | sent; you answered |" in markdown
    )
    assert (
        "| 21 December 2026, 18:40 | 2. 🔑 Who decides what you work on | sent late; skipped |"
        in (markdown)
    )
    assert (
        "| 28 December 2026, 18:00 | a check-in (its point is chosen when it is sent) | next"
        in (markdown)
    )
    assert "1 more were planned and never sent" in markdown
    assert "- Server 1300000000000000101, since 6 December 2026, 22:00 (Europe/Berlin)" in markdown
    assert "channel from `none` to `<#55>`" in markdown
    assert '## Reminders\n\n- {"id": 1, "note": "a table added later"}' in markdown


def test_without_a_time_zone_the_markdown_says_its_times_are_utc() -> None:
    data = journal_export()
    data["user"]["timezone"] = None
    markdown = export_markdown(CONTENT, data)
    assert "Times are in UTC (`/timezone` sets yours)" in markdown
    assert "Exported 13 December 2026, 19:46 (UTC)." in markdown
