"""The console's pure rendering, and one scripted session against a real bot."""

from __future__ import annotations

import io
from typing import Any

import pytest

from sandbox import Emulator
from sandbox.console import (
    actions,
    parse_command,
    render_choices,
    render_commands,
    render_message,
    render_modal,
    run_console,
)
from tests.sandbox.test_emulator import SandboxBot, bot, emu, world  # noqa: F401 (fixtures)

MESSAGE = {
    "id": "1",
    "channel_id": "2",
    "author": {"username": "Crossroads"},
    "content": "Point 1: purpose",
    "flags": 64,
    "embeds": [
        {
            "title": "Purpose",
            "description": "Why do you want this?",
            "fields": [{"name": "Think about", "value": "What would you do anyway?"}],
            "footer": {"text": "1 of 6"},
        }
    ],
    "attachments": [{"id": "3", "filename": "chart.png", "size": 2048}],
    "components": [
        {
            "type": 1,
            "components": [
                {"type": 2, "style": 1, "label": "Reflect", "custom_id": "reflect"},
                {"type": 2, "style": 2, "label": "Next ▶", "custom_id": "next"},
                {"type": 2, "style": 2, "label": "Old", "custom_id": "old", "disabled": True},
                {"type": 2, "style": 5, "label": "Essay", "url": "https://example.com"},
            ],
        }
    ],
}

MODAL = {
    "custom_id": "reflect",
    "title": "Reflect on purpose",
    "components": [
        {
            "type": 18,
            "label": "Your reflection",
            "description": "Private to you",
            "component": {
                "type": 4,
                "custom_id": "text",
                "style": 2,
                "min_length": 1,
                "max_length": 4000,
                "placeholder": "I want to…",
                "value": "draft",
            },
        },
        {
            "type": 18,
            "label": "Comfort",
            "component": {
                "type": 3,
                "custom_id": "comfort",
                "options": [{"label": str(n), "value": str(n)} for n in range(1, 6)],
            },
        },
    ],
}


def test_render_message_shows_everything_a_member_sees() -> None:
    text = render_message(MESSAGE)
    assert "Crossroads (only you can see this)" in text
    assert "Point 1: purpose" in text
    for part in ("■ Purpose", "Why do you want this?", "▸ Think about", "— 1 of 6"):
        assert part in text
    assert "📎 chart.png (2.0 KB)" in text
    assert "[1] Reflect  [2] Next ▶  [3] Old (disabled)  Essay <https://example.com>" in text
    assert [a["custom_id"] for a in actions(MESSAGE)] == ["reflect", "next", "old"]


def test_render_public_message_has_no_ephemeral_mark() -> None:
    assert "only you" not in render_message({**MESSAGE, "flags": 0})


def test_render_timestamps_readably() -> None:
    text = render_message({"content": "saved <t:1000000000:D>", "author": {"username": "b"}})
    assert "<t:" not in text and "2001" in text


def test_render_modal_lists_fields_with_limits_and_prefill() -> None:
    text = render_modal(MODAL)
    assert text.startswith("┌ Reflect on purpose")
    for part in (
        "» Your reflection",
        "Private to you",
        "1–4000 characters",
        "e.g. I want to…",
        "current: draft",
    ):
        assert part in text
    assert "» Comfort" in text and "5) 5" in text and "pick a number" in text


def test_render_commands_and_choices() -> None:
    commands: list[dict[str, Any]] = [
        {
            "name": "journal",
            "description": "Your journal",
            "options": [
                {
                    "type": 1,
                    "name": "list",
                    "description": "List entries",
                    "options": [{"type": 3, "name": "point", "description": "p"}],
                },
                {
                    "type": 1,
                    "name": "edit",
                    "description": "Edit one",
                    "options": [{"type": 3, "name": "entry", "description": "e", "required": True}],
                },
            ],
        },
        {"name": "help", "description": "What this is", "options": []},
    ]
    assert render_commands(commands).splitlines() == [
        "/help — What this is",
        "/journal list [point] — List entries",
        "/journal edit entry:… — Edit one",
    ]
    assert render_choices([{"name": "apple", "value": "a"}]) == "  1) apple"
    assert render_choices([]) == "(no suggestions)"


def test_parse_command_handles_quotes_and_paths() -> None:
    assert parse_command('/decide leaning:"leaning yes" why:"it fits me"') == (
        "decide",
        {"leaning": "leaning yes", "why": "it fits me"},
    )
    assert parse_command("/config channel channel:#general") == (
        "config channel",
        {"channel": "#general"},
    )
    with pytest.raises(ValueError):
        parse_command("/")


async def test_scripted_session(emu: Emulator, bot: SandboxBot, world: dict[str, int]) -> None:  # noqa: F811
    script = "\n".join(
        [
            "commands",
            "/nope",
            "/demo echo text:'hello there' times:2",
            "/counter",
            "1",
            "/fruit name:?ap",
            "2",
            "/feedback",
            "2",
            "all good",
            "/dm",
        ]
    )
    out = io.StringIO()
    await run_console(
        emu,
        guild_id=world["guild"],
        channel_id=world["channel"],
        user_id=world["user"],
        stdin=io.StringIO(script + "\n"),
        stdout=out,
    )
    text = out.getvalue()
    assert "/demo echo text:… [times] [loud] [where] — Echo text back" in text
    assert "✗ /nope is not registered" in text
    assert "hello there hello there" in text and "(only you can see this)" in text
    assert "count 1" in text and "[1] Add  [2] Off (disabled)" in text
    assert "  2) apricot" in text and "┌ Crossroads (only you can see this)\n│ apricot" in text
    assert "» Mood" in text and "bad: all good" in text
    assert "✉ Direct message" in text and "│ hello" in text
    assert emu.violations == []
