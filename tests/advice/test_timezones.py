"""Finding a member's time zone: autocomplete search, resolving, typos, a guess from the locale."""

from zoneinfo import ZoneInfo

import pytest

from advice.timezones import (
    CHOICES_MAX,
    LIKELY_ZONE,
    close_matches,
    likely_zone,
    resolve,
    search,
    zone_names,
)


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("berlin", "Europe/Berlin"),
        ("Berlin", "Europe/Berlin"),
        ("new york", "America/New_York"),
        ("New_York", "America/New_York"),
        ("new-york", "America/New_York"),
        ("sydney", "Australia/Sydney"),
        ("  SYDNEY ", "Australia/Sydney"),
        ("europe/berlin", "Europe/Berlin"),
    ],
)
def test_search_puts_the_city_first(query: str, best: str) -> None:
    assert search(query)[0] == best


def test_search_ranks_exact_city_then_city_prefix_then_anywhere() -> None:
    # Exact city beats cities that merely start with it, even those sorting earlier.
    assert search("south") == ["Australia/South", "Antarctica/South_Pole", "Atlantic/South_Georgia"]
    # A city starting with the query beats a name containing it, even one sorting earlier.
    assert search("lord") == ["Australia/Lord_Howe", "Asia/Qyzylorda"]
    assert search("indiana")[:2] == ["America/Indiana/Indianapolis", "America/Indianapolis"]


def test_search_returns_at_most_25_choices() -> None:
    assert CHOICES_MAX == 25
    assert len(search("a")) == 25
    assert len(search("e")) == 25
    assert len(search("america", limit=5)) == 5


def test_an_empty_query_gives_a_short_useful_list() -> None:
    for query in ("", "   "):
        found = search(query)
        assert 5 <= len(found) <= 25
        assert found[0] == "UTC"
        assert {"Europe/Berlin", "America/New_York", "Europe/London"} <= set(found)
        assert len(set(found)) == len(found)
        assert all(name in zone_names() for name in found)


def test_the_empty_query_list_covers_the_most_populous_locales() -> None:
    found = search("")
    assert {"Asia/Kolkata", "Asia/Shanghai", "Asia/Tokyo", "Asia/Seoul"} <= set(found)


def test_search_finds_nothing_for_junk() -> None:
    assert search("qqqxxzz") == []
    assert search("x" * 1000) == []


def test_zone_names_are_region_city_names_and_utc() -> None:
    names = zone_names()
    assert "UTC" in names and "Europe/Berlin" in names and "America/Argentina/Buenos_Aires" in names
    assert "US/Eastern" not in names and "EST5EDT" not in names and "Etc/GMT+5" not in names
    assert list(names) == sorted(names)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/berlin", "Europe/Berlin"),
        ("EUROPE/BERLIN", "Europe/Berlin"),
        ("  Europe/Berlin  ", "Europe/Berlin"),
        ("America/New York", "America/New_York"),
        ("america/new_york", "America/New_York"),
        ("America/Port au Prince", "America/Port-au-Prince"),
        ("utc", "UTC"),
        ("US/Eastern", "US/Eastern"),  # a legacy alias typed in full still works
    ],
)
def test_resolve_is_case_and_space_insensitive(typed: str, canonical: str) -> None:
    assert resolve(typed) == canonical
    ZoneInfo(canonical)  # and it is a real zone


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   ",
        "Berlin",  # a city alone is for search, not a zone
        "Mars/Olympus_Mons",
        "Europe/Berlin\x00",
        "\x00",
        "x" * 1000,
        "Europe/" + "x" * 1000,
        "../../etc/passwd",
        "/etc/localtime",
        "Europe/Berlin/",
        "zone.tab",
        "right/Europe/Berlin",
    ],
)
def test_resolve_rejects_junk(junk: str) -> None:
    assert resolve(junk) is None


@pytest.mark.parametrize("region", ["Europe", "America", "America/Indiana"])
def test_resolve_rejects_a_region_without_a_city(region: str) -> None:
    assert resolve(region) is None


def test_close_matches_catch_typos() -> None:
    assert "Europe/Berlin" in close_matches("Berln")
    assert close_matches("Sydny")[0] == "Australia/Sydney"
    assert "America/New_York" in close_matches("new yrok")
    assert len(close_matches("Berln", limit=2)) <= 2
    assert close_matches("") == []
    assert close_matches("qqqxxzz") == []


@pytest.mark.parametrize(
    ("locale", "zone"),
    [
        ("de", "Europe/Berlin"),
        ("en-US", "America/New_York"),
        ("en-GB", "Europe/London"),
        ("pt-BR", "America/Sao_Paulo"),
        ("ja", "Asia/Tokyo"),
    ],
)
def test_likely_zone_from_the_discord_locale(locale: str, zone: str) -> None:
    assert likely_zone(locale) == zone


@pytest.mark.parametrize("locale", [None, "", "xx", "tlh", "zh-HK"])
def test_likely_zone_of_an_unknown_locale_is_none(locale: str | None) -> None:
    assert likely_zone(locale) is None


def test_every_likely_zone_is_offered_and_resolves() -> None:
    for zone in LIKELY_ZONE.values():
        assert zone in zone_names()
        assert resolve(zone) == zone
