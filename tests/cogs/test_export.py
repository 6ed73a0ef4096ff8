"""The export's files: plain when they fit, one zip, or zip parts that each fit the limit."""

import io
import json
import random
import zipfile
from typing import Any

import pytest

from advice.content import load_content
from cogs.mydata.export import REQUEST_OVERHEAD, ExportTooLarge, export_messages

CONTENT = load_content()


def export_of(texts: list[str], reasons: list[str]) -> dict[str, Any]:
    return {
        "format": 1,
        "exported_at": "2026-01-05T09:00:00+00:00",
        "user": {"id": "1", "timezone": None, "created_at": None, "journey_started_at": None},
        "reflections": [
            {
                "id": index,
                "point": "purpose",
                "kind": "first",
                "text": text,
                "comfort": None,
                "created_at": "2026-01-05",
                "edited_at": None,
            }
            for index, text in enumerate(texts)
        ],
        "decisions": [
            {"leaning": "no", "reason": reason, "created_at": "2026-01-05"} for reason in reasons
        ],
        "servers_used_in": [],
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
