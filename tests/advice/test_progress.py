from datetime import UTC, datetime, timedelta

import pytest

from advice.progress import (
    Coverage,
    Leaning,
    Snapshot,
    ThenVsNow,
    consistency,
    coverage,
    decision_trend,
    opening_words,
    then_vs_now,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ORDER = ("purpose", "autonomy", "decades", "money", "fame", "obscurity")


# coverage


def test_coverage_counts_distinct_known_points() -> None:
    cov = coverage(["money", "purpose", "money", "unknown", "fame"], ORDER)
    assert cov == Coverage(done=3, total=6)
    assert cov.bar() == "▰▰▰▱▱▱ 3/6"
    assert not cov.complete


def test_coverage_empty_and_full() -> None:
    assert coverage([], ORDER).bar() == "▱▱▱▱▱▱ 0/6"
    full = coverage(ORDER, ORDER)
    assert full.bar() == "▰▰▰▰▰▰ 6/6"
    assert full.complete


# consistency


def test_consistency_with_no_reflections_is_zero() -> None:
    assert consistency([], T0, T0 + 20 * DAY) == 0.0


def test_consistency_counts_weeks_not_reflections() -> None:
    # Days 0-20 are weeks 0, 1, 2; three reflections in week 0, none in week 1, one in week 2.
    times = [T0, T0 + DAY, T0 + 6 * DAY, T0 + 14 * DAY]
    assert consistency(times, T0, T0 + 20 * DAY) == pytest.approx(2 / 3)


def test_consistency_counts_the_current_partial_week() -> None:
    assert consistency([T0], T0, T0) == 1.0
    # Day 7 opens week 1; nothing in it yet, so half.
    assert consistency([T0], T0, T0 + 7 * DAY) == 0.5
    assert consistency([T0], T0, T0 + 7 * DAY - timedelta(seconds=1)) == 1.0


def test_consistency_ignores_reflections_outside_the_window() -> None:
    times = [T0 - DAY, T0 + 30 * DAY]
    assert consistency(times, T0, T0 + 13 * DAY) == 0.0


def test_consistency_before_the_journey_starts() -> None:
    assert consistency([T0], T0, T0 - DAY) == 0.0


# opening_words


def test_opening_words_short_text_is_whitespace_collapsed() -> None:
    assert opening_words("  I want\n\nto   matter.  ") == "I want to matter."


def test_opening_words_cuts_on_a_word_boundary() -> None:
    text = "I want to do research because it lasts longer than any product I could ship"
    assert opening_words(text, limit=30) == "I want to do research because…"
    assert len(opening_words(text, limit=30)) <= 30


def test_opening_words_never_splits_a_word() -> None:
    assert opening_words("alpha beta gamma", limit=12) == "alpha beta…"
    assert opening_words("alpha beta gamma", limit=11) == "alpha beta…"
    assert opening_words("alpha beta gamma", limit=10) == "alpha…"


def test_opening_words_exact_fit_and_one_long_word() -> None:
    assert opening_words("abcde", limit=5) == "abcde"
    assert opening_words("abcdefghij", limit=5) == "abcd…"


def test_opening_words_drops_trailing_punctuation_before_the_ellipsis() -> None:
    assert opening_words("money, fame, obscurity", limit=12) == "money, fame…"


def test_opening_words_does_not_treat_an_apostrophe_as_a_boundary() -> None:
    assert opening_words("I don't know yet", limit=6) == "I…"


def test_opening_words_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        opening_words("text", limit=0)


# then_vs_now


def test_then_vs_now_first_vs_latest_for_points_revisited() -> None:
    reflections: dict[str, list[tuple[datetime, int | None, str]]] = {
        "money": [
            (T0 + 200 * DAY, 4, "Now I know my number."),
            (T0, 2, "Money scares me."),
            (T0 + 95 * DAY, 3, "Less scared."),
        ],
        "fame": [(T0, 1, "Only once.")],
        "purpose": [(T0, None, "Impact."), (T0 + 100 * DAY, 5, "Still impact.")],
    }
    result = then_vs_now(reflections, order=ORDER)
    assert [pair.slug for pair in result] == ["purpose", "money"]
    assert result[1] == ThenVsNow(
        slug="money",
        then=Snapshot(at=T0, comfort=2, opening="Money scares me."),
        now=Snapshot(at=T0 + 200 * DAY, comfort=4, opening="Now I know my number."),
    )
    assert result[0].then.comfort is None


def test_then_vs_now_without_order_keeps_mapping_order() -> None:
    reflections = {
        "money": [(T0, 1, "a"), (T0 + DAY, 2, "b")],
        "purpose": [(T0, 1, "c"), (T0 + DAY, 2, "d")],
    }
    assert [pair.slug for pair in then_vs_now(reflections)] == ["money", "purpose"]


def test_then_vs_now_nothing_revisited() -> None:
    assert then_vs_now({}) == []
    assert then_vs_now({"money": [(T0, 3, "once")]}, order=ORDER) == []


def test_then_vs_now_shortens_the_text() -> None:
    long_text = "word " * 40
    (pair,) = then_vs_now({"fame": [(T0, 1, long_text), (T0 + DAY, 1, long_text)]})
    assert pair.then.opening.endswith("…")
    assert len(pair.then.opening) <= 60


# Leaning and the decision trend


def test_leaning_labels_and_values() -> None:
    assert [leaning.label for leaning in Leaning] == [
        "yes",
        "leaning yes",
        "undecided",
        "leaning no",
        "no",
    ]
    assert Leaning.YES > Leaning.LEANING_YES > Leaning.UNDECIDED > Leaning.LEANING_NO > Leaning.NO
    assert int(Leaning.NO) == -2


@pytest.mark.parametrize(
    ("label", "leaning"),
    [
        ("leaning yes", Leaning.LEANING_YES),
        ("Leaning_No", Leaning.LEANING_NO),
        ("  leaning-yes ", Leaning.LEANING_YES),
        ("NO", Leaning.NO),
        ("undecided", Leaning.UNDECIDED),
    ],
)
def test_leaning_from_label(label: str, leaning: Leaning) -> None:
    assert Leaning.from_label(label) is leaning


def test_leaning_from_every_label_round_trips() -> None:
    for leaning in Leaning:
        assert Leaning.from_label(leaning.label) is leaning


@pytest.mark.parametrize("label", ["maybe", "", "leaning"])
def test_leaning_from_unknown_label(label: str) -> None:
    with pytest.raises(ValueError, match="expected one of: yes, leaning yes"):
        Leaning.from_label(label)


def test_decision_trend_nothing_recorded() -> None:
    assert decision_trend([]) == "no decision recorded yet"


def test_decision_trend_single_record() -> None:
    assert decision_trend([(T0, Leaning.UNDECIDED)]) == "undecided (1 record)"


def test_decision_trend_collapses_repeats_and_sorts_by_time() -> None:
    records = [
        (T0 + 60 * DAY, Leaning.LEANING_YES),
        (T0, Leaning.UNDECIDED),
        (T0 + 30 * DAY, Leaning.UNDECIDED),
    ]
    assert decision_trend(records) == "undecided → leaning yes (3 records)"


def test_decision_trend_steady() -> None:
    records = [(T0, Leaning.NO), (T0 + DAY, Leaning.NO)]
    assert decision_trend(records) == "no (2 records)"


def test_decision_trend_shows_a_return_to_an_earlier_stance() -> None:
    records = [(T0, Leaning.YES), (T0 + DAY, Leaning.NO), (T0 + 2 * DAY, Leaning.YES)]
    assert decision_trend(records) == "yes → no → yes (3 records)"


def test_decision_trend_long_path_is_shortened() -> None:
    path = [Leaning.NO, Leaning.LEANING_NO, Leaning.UNDECIDED, Leaning.LEANING_YES, Leaning.YES]
    records = [(T0 + i * DAY, leaning) for i, leaning in enumerate(path)]
    assert decision_trend(records) == "no → … → leaning yes → yes (5 records)"
