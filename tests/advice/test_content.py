import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from advice.content import (
    CUES_MAX,
    DEFAULT_CONTENT_PATH,
    EMBED_FIELD_VALUE_MAX,
    GENERIC_CUES,
    POINT_TEXT_MAX,
    Content,
    ContentError,
    Cue,
    Invalid,
    UnknownPoint,
    default_content,
    load_content,
)

ADVICE_DIR = DEFAULT_CONTENT_PATH.parent
SLUGS = ("purpose", "autonomy", "decades", "money", "fame", "obscurity")


@pytest.fixture
def shipped() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_CONTENT_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "points.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ContentError) as caught:
        load_content(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


# The shipped content


def test_shipped_content_has_the_six_points_in_essay_order() -> None:
    content = load_content()
    assert content.slugs == SLUGS
    assert [point.number for point in content.points] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("path", sorted(ADVICE_DIR.glob("*.yaml")), ids=lambda path: path.name)
def test_every_shipped_yaml_file_passes_the_schema(path: Path) -> None:
    assert load_content(path).points


def test_frame_quotes_the_essay() -> None:
    frame = load_content().frame
    assert frame.title == "Should you become an AI researcher?"
    assert "experienced software engineer" in frame.origin
    assert frame.answer == "You need to figure it out yourself over the next year."
    assert frame.closing == "Knowing this, you can figure out if this is what you want to do."
    intro = " ".join(frame.intro)
    assert "six points" in intro
    assert all(month in intro for month in ("3", "6", "12"))


@pytest.mark.parametrize(
    ("slug", "phrases"),
    [
        ("purpose", ["reason you want to be", "forgotten in my room", "impact over the long term"]),
        ("autonomy", ["OpenAI, DeepMind", "what the company tells you", "YouTube", "Su Jianlin"]),
        ("decades", ["Science takes decades", "Su Jianlin", "RoPE", "12 year"]),
        ("money", ["useful in 50 years", "product that will be sold soon"]),
        ("fame", ["likes, views", "5 likes today", "10 years", "most followed researcher on X"]),
        ("obscurity", ["specific obscure thing", "center of the attention", "TikToks"]),
    ],
)
def test_point_advice_quotes_the_essay(slug: str, phrases: list[str]) -> None:
    advice = load_content().point(slug).advice_text
    for phrase in phrases:
        assert phrase in advice


def test_shipped_points_fit_one_embed_with_room_to_spare() -> None:
    for point in load_content().points:
        assert point.text_length < POINT_TEXT_MAX
        assert len("\n".join(point.prompts)) <= EMBED_FIELD_VALUE_MAX
        assert 2 <= len(point.prompts) <= 3


def test_every_shipped_point_has_cues() -> None:
    for point in load_content().points:
        assert 20 <= len(point.cues) <= CUES_MAX, point.slug
        assert all(isinstance(cue, Cue) and 0 < cue.weight <= 3 for cue in point.cues)


def test_the_generic_cues_are_what_every_point_is_about() -> None:
    assert {"ai", "research", "researcher", "career", "should i"} <= GENERIC_CUES


def test_point_lookup_and_unknown_point() -> None:
    content = load_content()
    assert content.point("decades").title == "Science takes decades"
    with pytest.raises(UnknownPoint) as caught:
        content.point("nope")
    assert isinstance(caught.value, LookupError)
    assert not isinstance(caught.value, KeyError)
    assert caught.value.slug == "nope"


def test_content_is_immutable() -> None:
    point = load_content().point("money")
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.title = "changed"  # type: ignore[misc]


def test_default_content_is_loaded_once() -> None:
    assert default_content() is default_content()
    assert default_content().slugs == SLUGS


def test_error_names_the_default_file_relative_to_the_repo() -> None:
    with pytest.raises(ContentError, match=r"^advice/missing\.yaml: file not found$"):
        load_content(ADVICE_DIR / "missing.yaml")


# Extension: a seventh point is only data


def test_a_seventh_point_loads(tmp_path: Path, shipped: dict[str, Any]) -> None:
    shipped["points"].append(
        {
            "number": 7,
            "slug": "health",
            "title": "Look after yourself",
            "label": "Health",
            "summary": "Years of research need a body and a mind that last.",
            "advice": "A single paragraph is accepted as well as a list.",
            "prompts": ["How do you rest?", "What would burn you out?"],
            "revisit_prompt": "How have you slept these months?",
        }
    )
    content = load_content(write(tmp_path, shipped))
    assert content.slugs == (*SLUGS, "health")
    assert content.point("health").advice == ("A single paragraph is accepted as well as a list.",)
    assert content.point("health").emoji is None
    assert content.point("health").cues == ()


def test_cues_are_phrases_with_an_optional_weight(tmp_path: Path, shipped: dict[str, Any]) -> None:
    shipped["points"][3]["cues"] = ["salary", {"pay cut": 2}, {"pay": 0.5}, "  six   figures "]
    cues = load_content(write(tmp_path, shipped)).point("money").cues
    assert cues == (
        Cue(text="salary", weight=1.0),
        Cue(text="pay cut", weight=2.0),
        Cue(text="pay", weight=0.5),
        Cue(text="six figures", weight=1.0),
    )


@pytest.mark.parametrize(
    ("cues", "expected"),
    [
        (["research"], "points.3.cues.0.text: cue 'research' is shared by every point"),
        (["Should I"], "points.3.cues.0.text: cue 'Should I' is shared by every point"),
        (["AI"], "points.3.cues.0.text: cue 'AI' is shared by every point"),
        (["money!"], "points.3.cues.0.text: cue 'money!' must be words (letters, digits)"),
        (["a b c d e"], "points.3.cues.0.text: cue 'a b c d e' has 5 words; at most 4 allowed"),
        (["x" * 41], "points.3.cues.0.text: String should have at most 40 characters"),
        ([""], "points.3.cues.0.text: String should have at least 1 character"),
        ([{"money": 0}], "points.3.cues.0.weight: Input should be greater than 0"),
        ([{"money": 4}], "points.3.cues.0.weight: Input should be less than or equal to 3"),
        ([{"money": "lots"}], "points.3.cues.0.weight: Input should be a valid number"),
        (["money", "Money"], "points.3.cues: cues.1 'Money' duplicates cues.0"),
        ([12], "points.3.cues.0: a cue is a word or phrase, or one 'phrase: weight' pair"),
        ([True], "points.3.cues.0: a cue is a word or phrase"),
        ([None], "points.3.cues.0: a cue is a word or phrase"),
        ([{"a": 1, "b": 2}], "points.3.cues.0: a cue is a word or phrase"),
        ("money", "points.3.cues: Input should be a list"),
        ([f"w{n}" for n in range(CUES_MAX + 1)], "points.3.cues: List should have at most"),
    ],
)
def test_bad_cues(tmp_path: Path, shipped: dict[str, Any], cues: Any, expected: str) -> None:
    shipped["points"][3]["cues"] = cues
    assert f": {expected}" in load_error(write(tmp_path, shipped))


# Bad files


def test_missing_file(tmp_path: Path) -> None:
    assert load_error(tmp_path / "points.yaml").endswith(": file not found")


def test_missing_field(tmp_path: Path, shipped: dict[str, Any]) -> None:
    del shipped["points"][2]["revisit_prompt"]
    message = load_error(write(tmp_path, shipped))
    assert message.endswith(": points.2.revisit_prompt: Field required")


def test_one_prompt(tmp_path: Path, shipped: dict[str, Any]) -> None:
    shipped["points"][2]["prompts"] = ["Only one?"]
    message = load_error(write(tmp_path, shipped))
    assert ": points.2.prompts: List should have at least 2 items" in message


def test_four_prompts(tmp_path: Path, shipped: dict[str, Any]) -> None:
    shipped["points"][0]["prompts"] = ["a?", "b?", "c?", "d?"]
    assert ": points.0.prompts: List should have at most 3 items" in load_error(
        write(tmp_path, shipped)
    )


def test_duplicate_slug(tmp_path: Path, shipped: dict[str, Any]) -> None:
    shipped["points"][3]["slug"] = "purpose"
    message = load_error(write(tmp_path, shipped))
    assert ": points: points.3.slug 'purpose' duplicates points.0.slug" in message


def test_numbers_out_of_order(tmp_path: Path, shipped: dict[str, Any]) -> None:
    shipped["points"][4]["number"] = 6
    assert "points.4.number is 6, expected 5" in load_error(write(tmp_path, shipped))


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "points.yaml"
    path.write_text("frame:\n  title: [unclosed\npoints: []\n", encoding="utf-8")
    message = load_error(path)
    assert "YAML syntax error" in message
    assert ": line 3, column " in message


@pytest.mark.parametrize(("text", "found"), [("- a\n- b\n", "a list"), ("", "an empty file")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, found: str) -> None:
    path = tmp_path / "points.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_error(path).endswith(
        f": (top level): expected a mapping (frame, points), got {found}"
    )


def test_too_long_summary(tmp_path: Path, shipped: dict[str, Any]) -> None:
    shipped["points"][1]["summary"] = "x" * 101
    message = load_error(write(tmp_path, shipped))
    assert message.endswith(": points.1.summary: String should have at most 100 characters")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("slug", "Money", "points.3.slug: String should match pattern"),
        ("slug", "overview", "points.3.slug: 'overview' is reserved"),
        ("label", "x" * 26, "points.3.label: String should have at most 25 characters"),
        ("emoji", ":moneybag:", "points.3.emoji: must be a single emoji"),
        ("summary", "two\nlines", "points.3.summary: must be a single line"),
        ("prompts", ["ok?", "y" * 201], "points.3.prompts.1: String should have at most 200"),
        ("revisit_prompt", "z" * 201, "points.3.revisit_prompt: String should have at most 200"),
        ("advice", ["a" * 800, "b" * 800], "points.3.advice: advice is 1602 characters"),
        ("advice", ["c" * 1025], "points.3.advice.0: String should have at most 1024"),
        ("promts", ["a?", "b?"], "points.3.promts: Extra inputs are not permitted"),
    ],
)
def test_bad_point_field(
    tmp_path: Path, shipped: dict[str, Any], field: str, value: Any, expected: str
) -> None:
    shipped["points"][3][field] = value
    assert f": {expected}" in load_error(write(tmp_path, shipped))


def test_several_errors_are_counted_on_one_line(tmp_path: Path, shipped: dict[str, Any]) -> None:
    del shipped["points"][0]["title"]
    del shipped["points"][1]["title"]
    assert load_error(write(tmp_path, shipped)).endswith("Field required (and 1 more)")


def test_no_points(tmp_path: Path, shipped: dict[str, Any]) -> None:
    shipped["points"] = []
    assert ": points: List should have at least 1 item" in load_error(write(tmp_path, shipped))


def test_overview_must_fit_one_embed(shipped: dict[str, Any]) -> None:
    data = copy.deepcopy(shipped)
    data["frame"]["intro"] = ["w" * 1000] * 4
    data["points"] = [
        {**data["points"][0], "number": n, "slug": "p" + "abcdefghijklmnopqrstuvwxyz"[n]}
        for n in range(1, 25)
    ]
    with pytest.raises(Invalid, match="overview"):
        Content.read(data)
