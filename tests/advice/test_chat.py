import copy
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from advice.chat import (
    CONFIDENT_SCORE,
    MAX_INPUT_CHARS,
    NO_MATCH,
    ChatMatch,
    Matcher,
    PointMatch,
    clean,
    default_matcher,
    stem,
)
from advice.content import DEFAULT_CONTENT_PATH, GENERIC_CUES, Content, load_content

MESSAGES = Path(__file__).with_name("chat_messages.yaml")
SLUGS = ("purpose", "autonomy", "decades", "money", "fame", "obscurity")

# Floors just under what the shipped cues reach (bench/chat.py prints the figures): a change to
# the cues or the matcher that loses more than a message or two fails here. Reached: tuned part
# 97.1 % (101/104); held-out part 91.8 % (45/49), evaluated once, after the cues were tuned;
# off-topic 100 % (30/30) and 93.3 % (14/15).
TUNE_TOP1_FLOOR = 0.95
HELD_OUT_TOP1_FLOOR = 0.89
OFF_TOPIC_FLOOR = 0.90


@cache
def labelled() -> tuple[dict[str, Any], ...]:
    data = yaml.safe_load(MESSAGES.read_text(encoding="utf-8"))
    return tuple(data["messages"])


def matcher() -> Matcher:
    return default_matcher()


def top1(part: str) -> tuple[float, list[str]]:
    """Top-1 accuracy on the on-topic messages of one part, and the misses."""
    held_out = part == "held-out"
    items = [m for m in labelled() if m["points"] and bool(m.get("held_out")) == held_out]
    misses = []
    for item in items:
        result = matcher().match(item["text"])
        if not (result.confident and result.points[0].slug in item["points"]):
            misses.append(f"{item['points']} <- {result.slugs} {item['text'][:80]!r}")
    return 1 - len(misses) / len(items), misses


# The labelled set


def test_the_labelled_set_is_well_formed() -> None:
    messages = labelled()
    assert len(messages) >= 150
    for item in messages:
        assert set(item) <= {"points", "held_out", "text"}, item
        assert isinstance(item["text"], str) and item["text"].strip(), item
        assert isinstance(item["points"], list) and len(item["points"]) <= 2, item
        assert set(item["points"]) <= set(SLUGS), item
        assert len(set(item["points"])) == len(item["points"]), item
        assert item.get("held_out", False) in (True, False), item
    texts = [item["text"] for item in messages]
    assert len(set(texts)) == len(texts), "a message is in the set twice"


def test_the_labelled_set_is_varied() -> None:
    messages = labelled()
    off_topic = [m for m in messages if not m["points"]]
    assert len(off_topic) >= 30
    assert sum(len(m["points"]) == 2 for m in messages) >= 10
    by_point = Counter(m["points"][0] for m in messages if m["points"])
    assert set(by_point) == set(SLUGS)
    assert min(by_point.values()) >= 20
    lengths = sorted(len(m["text"].split()) for m in messages if m["points"])
    assert lengths[0] <= 3
    assert lengths[-1] >= 100
    assert sum("\n\n" in m["text"] for m in messages) >= 6  # several paragraphs


def test_a_third_of_the_set_is_held_out_in_every_group() -> None:
    messages = labelled()
    groups: dict[str, list[bool]] = {}
    for item in messages:
        group = item["points"][0] if item["points"] else "off-topic"
        groups.setdefault(group, []).append(bool(item.get("held_out")))
    for group, flags in groups.items():
        assert abs(sum(flags) - len(flags) / 3) <= 1, group


# Quality


def test_top1_on_the_tuned_part() -> None:
    accuracy, misses = top1("tune")
    assert accuracy >= TUNE_TOP1_FLOOR, "\n".join(misses)


def test_top1_on_the_held_out_part() -> None:
    accuracy, misses = top1("held-out")
    assert accuracy >= HELD_OUT_TOP1_FLOOR, "\n".join(misses)


@pytest.mark.parametrize("part", ["tune", "held-out"])
def test_off_topic_messages_get_no_confident_point(part: str) -> None:
    items = [
        m for m in labelled() if not m["points"] and bool(m.get("held_out")) == (part == "held-out")
    ]
    confident = [m["text"] for m in items if matcher().match(m["text"]).confident]
    assert 1 - len(confident) / len(items) >= OFF_TOPIC_FLOOR, confident


@pytest.mark.parametrize(
    "text",
    [
        "hi",
        "what's the weather",
        "thanks",
        "lol",
        "ok 👍",
        "AI",
        "research",
        "researcher",
        "researchers",
        "career",
        "should I",
        "should I become an AI researcher?",
        "Should I switch careers into AI research? I'm a researcher at heart.",
        "ai ai ai research research career career should i should i",
        "machine learning science scientist job work",
    ],
)
def test_small_talk_and_generic_words_pick_no_point(text: str) -> None:
    assert not matcher().match(text).confident


def test_no_cue_is_a_generic_word() -> None:
    for point in load_content().points:
        for cue in point.cues:
            assert cue.text.lower() not in GENERIC_CUES


# The cues


def test_every_point_has_cues_that_reach_it() -> None:
    """Each point has cues, and each cue of full weight, written alone, picks its own point
    (a cue another point's cue hides would fail here)."""
    content = load_content()
    for point in content.points:
        assert len(point.cues) >= 20, point.slug
        strong = [cue.text for cue in point.cues if cue.weight >= CONFIDENT_SCORE]
        assert len(strong) >= 10, point.slug
        for text in strong:
            result = matcher().match(text)
            assert result.confident, (point.slug, text)
            assert point.slug in result.slugs, (point.slug, text, result)


@pytest.mark.parametrize(
    ("text", "slug", "word"),
    [
        ("my salary", "money", "salary"),
        ("the salaries are low", "money", "salaries"),
        ("SALARY'S too low", "money", "SALARY'S"),
        ("mony is tight", "money", "mony"),
        ("i worry about moneey", "money", "moneey"),
        ("a six figure salery", "money", "salery"),
        ("i still have a morgage", "money", "morgage"),
        ("i'd be forgoten", "purpose", "forgoten"),
        ("working on somethign obscure", "obscurity", "obscure"),
        ("my obscurity", "obscurity", "obscurity"),
        ("being at the center of the attention", "obscurity", "center of the attention"),
        ("it's all decided from above", "autonomy", "from above"),
        ("my manager picks my projects", "autonomy", "manager"),
        ("so impatient", "decades", "impatient"),
        ("follower counts", "fame", "follower counts"),
        ("I got 3 likes", "fame", "likes"),
        ("**Money**, honestly.", "money", "Money"),
        ("(money)", "money", "money"),
        ("“money”", "money", "money"),
        ("ｍｏｎｅｙ", "money", "money"),
        ("mo\u200bney", "money", "money"),
        ("mo\u00adney", "money", "money"),
    ],
)
def test_forms_typos_and_marks_around_a_cue(text: str, slug: str, word: str) -> None:
    result = matcher().match(text)
    assert result.confident, result
    assert result.points[0].slug == slug
    assert word in result.points[0].words


@pytest.mark.parametrize(
    "text",
    [
        "I feel like it",  # "likes" on a post are no "like"
        "a honey badger",  # one letter off "money", but the first
        "a code monkey",  # one letter too many, and not a doubled one
        "an incoming message",  # not "income"
        "a patent",
        "my stack",
    ],
)
def test_words_near_a_cue_are_not_it(text: str) -> None:
    assert not matcher().match(text).confident, matcher().match(text)


def test_phd_in_any_spelling_is_one_word() -> None:
    for spelling in ("PhD", "phd", "Ph.D.", "Ph.D", "ph.d", "p.h.d", "PHD"):
        result = matcher().match(f"a {spelling} and money")
        words = [word for point in result.points for word in point.words]
        assert spelling.rstrip(".") in [word.rstrip(".") for word in words], (spelling, result)


def test_stems() -> None:
    assert stem("salaries") == stem("salary")
    assert stem("researchers") == stem("researcher") == stem("research") == stem("researching")
    assert stem("obscurity") == stem("obscure")
    assert stem("quitting") == stem("quit")
    assert stem("specialised") == stem("specialized")
    assert stem("loneliness") == stem("lonely")
    assert stem("likes") != stem("like")
    assert stem("follower") != stem("follow")
    assert stem("Ph.D.") == stem("PhD") == "phd"


def test_a_phrase_takes_its_words_once() -> None:
    # "center of attention" (obscurity) holds "attention", which fame and obscurity also have as
    # a word of their own: it counts once, for the phrase.
    result = matcher().match("I'd miss being the center of attention")
    assert result.points[0].slug == "obscurity"
    assert result.points[0].words == ("center of attention",)
    assert len(result.points) == 1


def test_a_phrase_allows_one_word_between_its_words() -> None:
    assert matcher().match("the center of the attention").points[0].words == (
        "center of the attention",
    )
    # Too far apart: "center" and "attention" count on their own (0.5 each), not as the phrase.
    words = matcher().match("the center of all of that attention").points[0].words
    assert "center of all of that attention" not in words


# The answer


def test_two_points_best_first_with_their_words() -> None:
    result = matcher().match("Should I quit my job to do a PhD? I worry about money.")
    assert result.confident
    assert result.slugs[0] == "money"
    assert result.points[0].words == ("money",)
    assert len(result.points) <= 2
    assert result.because.startswith('you mentioned "money"')


def test_at_most_two_points_and_the_second_has_half_the_score_at_least() -> None:
    text = (
        "My salary, my manager who picks everything, the decades it takes, my followers and "
        "the niche I'd work in: that's my reason."
    )
    result = matcher().match(text)
    assert len(result.points) == 2
    assert result.points[0].score >= result.points[1].score >= result.points[0].score / 2
    # A second point with less than half the score of the first is not shown.
    result = matcher().match("an obscure niche, and a salary")
    assert result.slugs == ("obscurity",)
    assert result.points[0].score == 2.5


def test_words_are_as_written_in_order_and_once() -> None:
    result = matcher().match("MONEY money Salary, money and my SALARY")
    assert result.points[0].words == ("MONEY", "Salary")
    assert result.points[0].score == 2.0


def test_because() -> None:
    assert PointMatch("money", 1.0, ("salary",)).because == 'you mentioned "salary"'
    assert PointMatch("money", 2.0, ("salary", "PhD")).because == (
        'you mentioned "salary" and "PhD"'
    )
    assert PointMatch("money", 3.0, ("a", "b", "c")).because == 'you mentioned "a", "b" and "c"'
    assert PointMatch("money", 3.0, tuple("abcdef")).because.count('"') == 8
    both = ChatMatch(
        points=(PointMatch("money", 1.0, ("money",)), PointMatch("decades", 0.5, ("PhD",))),
        confident=True,
    )
    assert both.because == 'you mentioned "money" and "PhD"'
    assert NO_MATCH.because == ""
    assert NO_MATCH.best is None


def test_nothing_found() -> None:
    for text in ("", "   ", "hello there", "🙂"):
        result = matcher().match(text)
        assert result == NO_MATCH
        assert result.points == () and not result.confident


# Determinism


def test_the_same_text_always_gets_the_same_answer() -> None:
    texts = [item["text"] for item in labelled()]
    first = [matcher().match(text) for text in texts]
    fresh = Matcher.from_content(load_content())
    assert [fresh.match(text) for text in reversed(texts)] == first[::-1]
    assert [matcher().match(text) for text in texts] == first
    assert [Matcher.from_content(load_content()).match(text) for text in texts[:20]] == first[:20]


def test_the_memo_is_bounded_and_changes_no_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import advice.chat

    monkeypatch.setattr(advice.chat, "_MEMO_MAX", 8)
    small = Matcher.from_content(load_content())
    texts = [item["text"] for item in labelled()]
    assert [small.match(text) for text in texts] == [matcher().match(text) for text in texts]
    assert len(small._memo) <= 8


# Hostile input


HOSTILE = [
    "",
    " ",
    "\n\n\t",
    "\ud800",
    "\udfff money",
    "money\ud800salary",
    "\u200b" * 100,
    "\u202eyenom\u202c",
    "@everyone",
    "@here money",
    "<@123456789012345678> <@!1> <@&2> <#3> <:money:4> <a:salary:5> <t:1700000000:R> </help:6>",
    "https://example.com/money?salary=1",
    "www.money.example",
    "```\nsalary = money * 2\n```",
    "```python\nunclosed money",
    "`salary`",
    "💰🤑💸" * 500,
    "👨‍👩‍👧‍👦 family",
    "ｍｏｎｅｙ",
    "ﷺ" * 3000,
    "a" * 5000,
    "money " * 2000,
    "Ph.D." * 1000,
    "." * 4000,
    "'" * 4000,
    "x" * 100_000,
    "\x00\x01\x02\x7f money",
    "".join(chr(c) for c in range(0x20, 0x2FFF)),
    "e\u0301\u0301\u0301" * 500,
    "Z̸̢̛a̷l̶g̵o̴ money",
    "‮money‬",
    "m.o.n.e.y",
    "s.a.l.a.r.y.",
    "i.e. e.g. a.k.a. U.S.A.",
    "what's the point'''''",
    "1" * 4000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda text: repr(text[:20]))
def test_hostile_input_does_not_raise(text: str) -> None:
    result = matcher().match(text)
    assert isinstance(result, ChatMatch)
    assert len(result.points) <= 2
    for point in result.points:
        assert point.slug in SLUGS
        for word in point.words:
            word.encode("utf-8")  # no lone surrogate reaches an answer
            assert "@" not in word and "<" not in word
    result.because.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(),
            st.sampled_from(["money", "Ph.D.", "center of", "attention", "```", "@everyone"]),
            st.text(alphabet=st.characters(exclude_categories=()), max_size=50),  # surrogates too
        ),
        max_size=8,
    )
)
def test_any_text_gets_a_well_formed_answer_and_the_same_one_again(parts: list[str]) -> None:
    text = " ".join(parts)
    result = matcher().match(text)
    assert len(result.points) <= 2
    assert result.confident == bool(result.points and result.points[0].score >= CONFIDENT_SCORE)
    assert all(point.words for point in result.points)
    assert matcher().match(text) == result


def test_long_messages_are_read_up_to_the_limit() -> None:
    padding = "blah " * (MAX_INPUT_CHARS // 5)
    assert matcher().match("money " + padding).confident
    assert not matcher().match(padding + " money").confident
    assert len(clean("x" * 100_000)) == MAX_INPUT_CHARS


def test_code_links_and_mentions_are_not_read() -> None:
    for text in (
        "```\nsalary = money\n```",
        "https://example.com/salary/money",
        "<:money:123456>",
        "look www.money.example",
    ):
        assert matcher().match(text) == NO_MATCH, text
    assert matcher().match("```\ncode\n``` but my salary").points[0].words == ("salary",)


def test_not_a_string() -> None:
    assert matcher().match(None) == NO_MATCH  # type: ignore[arg-type]


# Content: a seventh point needs no code


def test_a_seventh_point_with_cues_is_matched(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_CONTENT_PATH.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    data["points"].append(
        {
            "number": 7,
            "slug": "health",
            "title": "Look after yourself",
            "label": "Health",
            "summary": "Years of research need a body and a mind that last.",
            "advice": "Sleep, move, and see a doctor.",
            "prompts": ["How do you rest?", "What would burn you out?"],
            "revisit_prompt": "How have you slept these months?",
            "cues": ["sleep", "exhausted", {"mental health": 1.5}, {"tired": 0.5}],
        }
    )
    path = tmp_path / "points.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    content = load_content(path)
    assert isinstance(content, Content)
    seventh = Matcher.from_content(content)
    result = seventh.match("I can't sleep and my mental health is bad")
    assert result.confident
    assert result.points[0] == PointMatch("health", 2.5, ("sleep", "mental health"))
    assert not seventh.match("a bit tired").confident
    assert seventh.match("my salary").slugs == ("money",)
