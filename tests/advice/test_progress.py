from datetime import UTC, datetime, timedelta

import pytest

from advice.progress import (
    Coverage,
    Leaning,
    PointStory,
    Snapshot,
    comfort_path,
    consistency,
    coverage,
    decision_trend,
    excerpt,
    local_date,
    local_time,
    opening_words,
    point_stories,
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


# excerpt


def test_excerpt_keeps_a_short_text_whole_with_its_lines() -> None:
    text = "  Impact,   honestly.\n\n\nAnd curiosity.  "
    assert excerpt(text, 100) == "Impact, honestly.\nAnd curiosity."
    assert excerpt(text, 100, quote="> ") == "> Impact, honestly.\n> And curiosity."


def test_excerpt_cuts_a_long_text_at_a_word_within_the_limit_quote_included() -> None:
    text = "I want to do research because I care about the long run of things."
    cut = excerpt(text, 40, quote="> ")
    assert cut == "> I want to do research because I care…"
    assert len(cut) <= 40


def test_excerpt_ends_a_line_early_rather_than_show_a_stub_of_the_next() -> None:
    text = "First line that fits.\nSecond line that is much too long to fit here."
    assert excerpt(text, 30) == "First line that fits.…"
    assert excerpt(text, 40) == "First line that fits.\nSecond line that…"
    for limit in range(3, 80):
        assert len(excerpt(text, limit, quote="> ")) <= limit


def test_excerpt_rejects_a_limit_with_no_room_for_text() -> None:
    with pytest.raises(ValueError):
        excerpt("text", 2, quote="> ")


# comfort_path


def test_comfort_path_leaves_out_unrated_entries_and_repeats() -> None:
    assert comfort_path([2, None, 3, 3, 4]) == "2 → 3 → 4"
    assert comfort_path([None, 3, None]) == "3"
    assert comfort_path([None, None]) is None
    assert comfort_path([1, 2, 3, 4, 5, 4]) == "1 → … → 5 → 4"


# point_stories


def test_point_stories_first_and_latest_count_and_comfort_in_order() -> None:
    reflections: dict[str, list[tuple[datetime, int | None, str | None]]] = {
        "money": [
            (T0 + 200 * DAY, 4, "Now I know my number."),
            (T0, 2, "Money scares me."),
            (T0 + 95 * DAY, 3, None),  # a middle entry's text is never needed
        ],
        "fame": [(T0, 1, "Only once.")],
        "purpose": [(T0, None, "Impact."), (T0 + 100 * DAY, 5, "Still impact.")],
    }
    result = point_stories(reflections, order=ORDER)
    assert [story.slug for story in result] == ["purpose", "money", "fame"]
    assert result[1] == PointStory(
        slug="money",
        first=Snapshot(at=T0, comfort=2, text="Money scares me."),
        latest=Snapshot(at=T0 + 200 * DAY, comfort=4, text="Now I know my number."),
        count=3,
        comfort="2 → 3 → 4",
    )
    assert result[0].comfort == "5"
    assert result[2].latest is None and result[2].count == 1
    revisited = point_stories(reflections, order=ORDER, revisited_only=True)
    assert [story.slug for story in revisited] == ["purpose", "money"]


def test_point_stories_without_order_keeps_mapping_order() -> None:
    reflections: dict[str, list[tuple[datetime, int | None, str | None]]] = {
        "money": [(T0, 1, "a"), (T0 + DAY, 2, "b")],
        "purpose": [(T0, 1, "c"), (T0 + DAY, 2, "d")],
    }
    assert [story.slug for story in point_stories(reflections)] == ["money", "purpose"]
    assert point_stories({}) == []


# the member's own time


def test_local_time_reads_the_members_wall_clock_and_names_the_zone() -> None:
    at = datetime(2026, 12, 13, 19, 46, tzinfo=UTC)
    assert local_time(at, "Europe/Berlin") == "13 December 2026, 20:46 (Europe/Berlin)"
    assert local_time(at, "Europe/Berlin", with_zone=False) == "13 December 2026, 20:46"
    assert local_time(at, "Australia/Sydney") == "14 December 2026, 06:46 (Australia/Sydney)"
    assert local_date(at, "Australia/Sydney") == "14 December 2026"
    # No zone set, or one the zone database no longer knows: UTC, and it says so.
    assert local_time(at, None) == "13 December 2026, 19:46 (UTC)"
    assert local_time(at, "Mars/Olympus") == "13 December 2026, 19:46 (UTC)"


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
