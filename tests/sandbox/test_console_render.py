"""The console's pure rendering, and one scripted session against a real bot."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import Emulator
from sandbox.console import (
    EMBED_WIDTH,
    Display,
    actions,
    attachment_path,
    describe_moment,
    format_timestamp,
    parse_advance,
    parse_command,
    pick_choices,
    relative_time,
    render_choices,
    render_commands,
    render_embed,
    render_markdown,
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


# A fixed instant: Tuesday 14 May 2024, 08:05:09 UTC (10:05:09 in Berlin, summer time).
INSTANT = 1715673909
BERLIN = Display(zone="Europe/Berlin", now=datetime(2024, 5, 14, 8, 5, 9, tzinfo=UTC))
ANSI = Display(ansi=True, zone="Europe/Berlin", now=BERLIN.now)
SGR = re.compile(r"\x1b\[[0-9;]*m")


def styled(text: str, *codes: str) -> str:
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


@pytest.mark.parametrize(
    ("source", "plain", "ansi"),
    [
        ("**bold**", "bold", styled("bold", "1")),
        ("*italic*", "italic", styled("italic", "3")),
        ("_italic_", "italic", styled("italic", "3")),
        ("__underline__", "underline", styled("underline", "4")),
        ("~~gone~~", "gone", styled("gone", "9")),
        ("`x_y * z`", "x_y * z", styled("x_y * z", "36")),
        ("***both***", "both", styled("both", "1", "3")),
        (
            "**bold _and italic_**",
            "bold and italic",
            styled("bold ", "1") + styled("and italic", "1", "3"),
        ),
        ("# Title", "Title", styled("Title", "1", "4")),
        ("## Smaller", "Smaller", styled("Smaller", "1")),
        ("-# small print", "small print", styled("small print", "2")),
        ("> said **so**", "▎ said so", styled("▎ ", "2") + "said " + styled("so", "1")),
        ("- one", "• one", "• one"),
        ("||secret||", "secret", styled("secret", "7")),
        ("\\*not italic\\*", "*not italic*", "*not italic*"),
    ],
)
def test_markdown_marks_become_styles_on_a_terminal_and_vanish_otherwise(
    source: str, plain: str, ansi: str
) -> None:
    assert render_markdown(source, BERLIN) == plain
    assert render_markdown(source, ANSI) == ansi
    assert render_markdown(source) == plain  # plain text is the default


@pytest.mark.parametrize(
    "text",
    [
        "snake_case_name stays",
        "my_var_ here and a_b",
        "5 * 3 * 2 = 30",
        "a *b * c",
        "2 * 3",
        "file_name_v2.png",
        "https://example.com/a_b_c_d?q=*x*",
        "#hashtag and #1",
        "->  arrows -> and 3 > 2",
        "~~ not strike ~~",
        "",
    ],
)
def test_text_that_is_not_markdown_is_left_alone(text: str) -> None:
    assert render_markdown(text, BERLIN) == text
    assert render_markdown(text, ANSI).replace("\x1b[34m", "").replace("\x1b[0m", "") == text


def test_links_keep_their_address_and_lose_their_brackets() -> None:
    assert (
        render_markdown("[the essay](https://e.com/a_b)", BERLIN) == "the essay <https://e.com/a_b>"
    )
    assert render_markdown("see <https://e.com/x_y_z>.", BERLIN) == "see https://e.com/x_y_z."
    assert render_markdown("go to https://e.com/a_b_c.", BERLIN) == "go to https://e.com/a_b_c."
    assert render_markdown("<:wave:123> hi", BERLIN) == ":wave: hi"


def test_code_blocks_are_shown_verbatim_without_fences() -> None:
    text = "before\n```py\nx = a_b * c\n**y**\n```\nafter"
    assert render_markdown(text, BERLIN).splitlines() == [
        "before",
        "  x = a_b * c",
        "  **y**",
        "after",
    ]


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("t", "10:05"),
        ("T", "10:05:09"),
        ("d", "14/05/2024"),
        ("D", "14 May 2024"),
        ("f", "14 May 2024 10:05"),
        ("F", "Tuesday, 14 May 2024 10:05"),
        ("R", "a few seconds ago"),
    ],
)
def test_timestamps_in_every_style_show_the_members_local_time(style: str, expected: str) -> None:
    assert render_markdown(f"<t:{INSTANT}:{style}>", BERLIN) == expected
    # In winter Berlin is one hour ahead of UTC, not two.
    winter = render_markdown(f"<t:{INSTANT - 150 * 86400}:f>", BERLIN)
    assert winter == "16 December 2023 09:05"


def test_timestamps_without_style_or_zone_or_inside_marks() -> None:
    assert render_markdown(f"<t:{INSTANT}>", BERLIN) == "14 May 2024 10:05"
    utc = Display(now=BERLIN.now)
    assert render_markdown(f"<t:{INSTANT}:t>", utc) == "08:05"
    unknown = Display(zone="Mars/Olympus_Mons", now=BERLIN.now)
    assert render_markdown(f"<t:{INSTANT}:t>", unknown) == "08:05"
    assert render_markdown(f"**due <t:{INSTANT}:t>**", ANSI) == styled("due 10:05", "1")
    assert render_markdown("<t:99999999999999:f>", BERLIN) == "<t:99999999999999:f>"


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=10), "in a few seconds"),
        (timedelta(seconds=-30), "a few seconds ago"),
        (timedelta(seconds=50), "in a minute"),
        (timedelta(minutes=5), "in 5 minutes"),
        (timedelta(minutes=-50), "an hour ago"),
        (timedelta(hours=-2), "2 hours ago"),
        (timedelta(hours=23), "in a day"),
        (timedelta(days=3), "in 3 days"),
        (timedelta(days=-3, hours=-4), "3 days ago"),
        (timedelta(days=7), "in 7 days"),
        (timedelta(days=30), "in a month"),
        (timedelta(days=-92), "3 months ago"),
        (timedelta(days=365), "in a year"),
        (timedelta(days=-800), "2 years ago"),
    ],
)
def test_relative_times_are_worded_like_discord(delta: timedelta, expected: str) -> None:
    now = datetime(2024, 5, 14, 8, 0, tzinfo=UTC)
    assert relative_time(now + delta, now) == expected
    stamp = int((now + delta).timestamp())
    assert render_markdown(f"<t:{stamp}:R>", Display(now=now)) == expected


def test_format_timestamp_and_describe_moment() -> None:
    moment = datetime.fromtimestamp(INSTANT, UTC)
    assert format_timestamp(moment, "F", BERLIN) == "Tuesday, 14 May 2024 10:05"
    assert describe_moment(moment, "Europe/Berlin") == "Tuesday 14 May 2024, 10:05 in Europe/Berlin"
    assert describe_moment(moment, None).startswith("Tuesday 14 May 2024, 08:05 UTC")
    assert "not a zone" in describe_moment(moment, "Nowhere/Land")


def test_embed_renders_markdown_and_wraps_by_visible_width() -> None:
    long = "word " * 30
    embed = {
        "title": f"**Purpose** <t:{INSTANT}:D>",
        "description": f"> {long}\n- **{long}**",
        "fields": [{"name": "_Think_", "value": "- one_two\n- *three*"}],
        "footer": {"text": "**not markdown** in footers"},
    }
    plain = render_embed(embed, BERLIN).splitlines()
    assert plain[1] == "│ ■ Purpose 14 May 2024"
    quote = [line for line in plain if line.startswith("│ ▎ ")]
    bullet = plain.index(next(line for line in plain if line.startswith("│ • ")))
    assert len(quote) == 2  # the quote bar continues on the wrapped line
    assert plain[bullet + 1].startswith("│   word")  # hangs under the bullet's text
    assert "│ ▸ Think" in plain and "│   • one_two" in plain and "│   • three" in plain
    assert "│ — **not markdown** in footers" in plain
    chart = render_embed({"image": {"url": "attachment://progress.png"}})
    assert "│ [image: progress.png, 📎 below]" in chart
    assert all(len(line) <= EMBED_WIDTH + 2 for line in plain)

    ansi = render_embed(embed, ANSI).splitlines()
    assert [SGR.sub("", line) for line in ansi] == plain
    assert ansi[1] == "│ ■ " + styled("Purpose 14 May 2024", "1")  # titles are bold
    # Bold text broken across lines is closed at the end of one and reopened on the next.
    assert ansi[bullet].endswith("word\x1b[0m") and ansi[bullet + 1].startswith("│   \x1b[1mword")


def test_render_message_in_color_and_with_saved_files() -> None:
    saved = {"chart.png": "/tmp/files/1-chart.png"}
    text = render_message(MESSAGE, BERLIN, saved)
    assert "│ 📎 chart.png (2.0 KB) → /tmp/files/1-chart.png" in text
    colored = render_message(MESSAGE, ANSI, saved)
    assert SGR.sub("", colored) == text
    assert styled("Crossroads", "1") in colored and styled("Purpose", "1") in colored
    assert "\x1b[" not in render_message(MESSAGE)


def test_attachment_paths_are_unique_and_stay_in_their_directory(tmp_path: Path) -> None:
    message = {"id": "42"}
    assert attachment_path(tmp_path, message, "chart.png") == tmp_path / "42-chart.png"
    assert attachment_path(tmp_path, {"id": "43"}, "chart.png") != tmp_path / "42-chart.png"
    for hostile in ("../../etc/passwd", "..\\x.png", "/abs/p.png", ".hidden", "a b?.png"):
        path = attachment_path(tmp_path, message, hostile)
        assert path.parent == tmp_path and path.name.startswith("42-")
        assert "/" not in path.name and ".." not in path.name


@pytest.mark.parametrize(
    ("spec", "step", "times"),
    [
        ("+7d", timedelta(days=7), 1),
        ("+3h", timedelta(hours=3), 1),
        ("+30m", timedelta(minutes=30), 1),
        ("+2w", timedelta(weeks=2), 1),
        ("+1d12h", timedelta(days=1, hours=12), 1),
        ("+1w2d3h4m", timedelta(days=9, hours=3, minutes=4), 1),
        ("7d", timedelta(days=7), 1),
        ("+1D 12H", timedelta(days=1, hours=12), 1),
        ("+1w x52", timedelta(weeks=1), 52),
    ],
)
def test_parse_advance(spec: str, step: timedelta, times: int) -> None:
    assert parse_advance(spec) == (step, times)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("-1d", "only moves forward"),
        ("", "how far"),
        ("+0d", "at least a minute"),
        ("soon", "cannot read 'soon'"),
        ("+7 days", "cannot read"),
        ("+1y", "cannot read"),
        ("+99999w", "at most"),
        ("+1d x0", "repeat"),
    ],
)
def test_parse_advance_refuses_with_an_example(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        parse_advance(spec)
    assert ":time +7d" in str(caught.value) and "\n" not in str(caught.value)


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


DECIDE = {
    "name": "decide",
    "type": 1,
    "options": [{"name": "leaning", "type": 3}, {"name": "why", "type": 3}],
}
JOURNAL = {
    "name": "journal",
    "type": 1,
    "options": [{"name": "edit", "type": 1, "options": [{"name": "entry", "type": 3}]}],
}


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (
            "/decide leaning:leaning yes why:Impact matters more than pay",
            ("decide", {"leaning": "leaning yes", "why": "Impact matters more than pay"}),
        ),
        # A word with a colon that names no other option is part of the value.
        ("/decide leaning:no why:note: pay", ("decide", {"leaning": "no", "why": "note: pay"})),
        (
            "/decide why:why: is hard leaning:no",
            ("decide", {"why": "why: is hard", "leaning": "no"}),
        ),
        (
            '/decide why:"a leaning: b" leaning:no',
            ("decide", {"why": "a leaning: b", "leaning": "no"}),
        ),
        ("/decide why:it's fine", ("decide", {"why": "it's fine"})),
        ("/decide leaning:yes why:", ("decide", {"leaning": "yes", "why": ""})),
        ("/journal edit entry:?my first", ("journal edit", {"entry": "?my first"})),
        ("/help", ("help", {})),
    ],
)
def test_option_values_run_to_the_next_option_as_in_discords_client(
    line: str, parsed: tuple[str, dict[str, str]]
) -> None:
    assert parse_command(line, [DECIDE, JOURNAL]) == parsed


def test_without_definitions_any_name_starts_an_option() -> None:
    assert parse_command("/decide leaning:leaning yes why:it fits") == (
        "decide",
        {"leaning": "leaning yes", "why": "it fits"},
    )
    assert parse_command("/decide why:a b note: c")[1] == {"why": "a b", "note": "c"}
    with pytest.raises(ValueError, match="name:value"):
        parse_command('/decide "leaning:yes"')


CHECKIN = {
    "name": "checkin",
    "type": 1,
    "options": [
        {
            "name": "start",
            "type": 1,
            "options": [
                {
                    "name": "weekday",
                    "type": 4,
                    "choices": [{"name": "Monday", "value": 0}, {"name": "Wednesday", "value": 2}],
                },
                {"name": "hour", "type": 4},
            ],
        }
    ],
}


def test_choices_are_picked_by_name_as_in_discords_client() -> None:
    assert pick_choices("checkin start", {"weekday": "wednesday", "hour": "9"}, [CHECKIN]) == {
        "weekday": "2",
        "hour": "9",
    }
    assert pick_choices("checkin start", {"weekday": "2"}, [CHECKIN]) == {"weekday": "2"}
    assert pick_choices("checkin start", {"weekday": "?we"}, [CHECKIN]) == {"weekday": "?we"}
    with pytest.raises(ValueError, match="pick weekday from its choices: Monday, Wednesday"):
        pick_choices("checkin start", {"weekday": "Someday"}, [CHECKIN])
    assert pick_choices("unknown", {"weekday": "Someday"}, [CHECKIN]) == {"weekday": "Someday"}


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


def test_pathological_markdown_renders_quickly_without_recursing_forever() -> None:
    for text in ("**" * 2000, "*a" * 2000, "_a_b" * 1000, "~~a " * 1000, "[a](" * 1000):
        assert render_markdown(text, BERLIN)
        assert render_embed({"description": text}, ANSI)


def test_mentions_read_as_names_where_known() -> None:
    names = {"<#5>": "#reflections", "<@7>": "@you"}
    display = Display(names=names)
    text = "Posts go to <#5>, set by <@!7>; <@8> and <@&9> are unknown"
    assert render_markdown(text, display) == (
        "Posts go to #reflections, set by @you; <@8> and <@&9> are unknown"
    )
    ansi = render_markdown("in <#5>", Display(ansi=True, names=names))
    assert ansi == "in " + styled("#reflections", "1")


def test_a_reply_shows_what_it_answers_on_one_short_line() -> None:
    asked = {"author": {"username": "ada"}, "content": "<@9> is **a PhD** worth it?\nsecond line"}
    reply = {"author": {"username": "Crossroads"}, "content": "Yes", "referenced_message": asked}
    display = Display(names={"<@9>": "@Crossroads"})
    assert render_message(reply, display) == (
        "┌ Crossroads\n│ ↪ ada: @Crossroads is a PhD worth it?\n│ Yes\n└"
    )
    long = {**reply, "referenced_message": {**asked, "content": "word " * 30}}
    line = render_message(long).splitlines()[1]
    assert line.startswith("│ ↪ ada: word word") and line.endswith("…")
    assert len(line) <= len("│ ↪ ada: ") + 60
    gone = {**reply, "referenced_message": {"author": {"username": "bob"}, "content": ""}}
    assert "│ ↪ bob: (no text)" in render_message(gone)
