"""Finding a member's IANA time zone: search by any part of its name, close matches, a guess.

The names come from zoneinfo (with the `tzdata` package as the source where the system has no
zone database), limited to the region/city names people pick from; legacy aliases such as
"US/Eastern" still work when typed in full.
"""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

REGIONS = (
    "Africa/",
    "America/",
    "Antarctica/",
    "Arctic/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
)
CHOICES_MAX = 25  # Discord shows at most 25 autocomplete choices

# Discord's client locales, each with the zone most of its speakers live in: only a suggestion.
LIKELY_ZONE = {
    "id": "Asia/Jakarta",
    "da": "Europe/Copenhagen",
    "de": "Europe/Berlin",
    "en-GB": "Europe/London",
    "en-US": "America/New_York",
    "es-ES": "Europe/Madrid",
    "es-419": "America/Mexico_City",
    "fr": "Europe/Paris",
    "hr": "Europe/Zagreb",
    "it": "Europe/Rome",
    "lt": "Europe/Vilnius",
    "hu": "Europe/Budapest",
    "nl": "Europe/Amsterdam",
    "no": "Europe/Oslo",
    "pl": "Europe/Warsaw",
    "pt-BR": "America/Sao_Paulo",
    "ro": "Europe/Bucharest",
    "fi": "Europe/Helsinki",
    "sv-SE": "Europe/Stockholm",
    "vi": "Asia/Ho_Chi_Minh",
    "tr": "Europe/Istanbul",
    "cs": "Europe/Prague",
    "el": "Europe/Athens",
    "bg": "Europe/Sofia",
    "ru": "Europe/Moscow",
    "uk": "Europe/Kyiv",
    "hi": "Asia/Kolkata",
    "th": "Asia/Bangkok",
    "zh-CN": "Asia/Shanghai",
    "ja": "Asia/Tokyo",
    "zh-TW": "Asia/Taipei",
    "ko": "Asia/Seoul",
}


@functools.cache
def zone_names() -> tuple[str, ...]:
    names = {name for name in available_timezones() if name.startswith(REGIONS)}
    return tuple(sorted(names | {"UTC"}))


def _key(text: str) -> str:
    """ "new york", "New_York" and "new-york" all become "new york"."""
    return " ".join(text.lower().replace("_", " ").replace("-", " ").split())


def search(query: str, limit: int = CHOICES_MAX) -> list[str]:
    """Zones whose name contains `query` anywhere; cities that start with it first."""
    wanted = _key(query)
    if not wanted:
        return list(_popular()[:limit])
    scored = []
    for name in zone_names():
        full = _key(name)
        if wanted not in full:
            continue
        city = _key(name.rsplit("/", 1)[-1])
        rank = 0 if city == wanted else 1 if city.startswith(wanted) else 2
        scored.append((rank, name))
    return [name for _, name in sorted(scored)[:limit]]


# Shown before the member types anything: every inhabited continent, most populous first.
POPULAR = (
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Mexico_City",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Africa/Lagos",
    "Africa/Cairo",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Jakarta",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Seoul",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


def _popular() -> tuple[str, ...]:
    return POPULAR


def resolve(raw: str) -> str | None:
    """The canonical spelling of a zone name the member typed, or None if it is not one."""
    text = raw.strip()
    if not text or len(text) > 64:
        return None
    by_key = {_key(name): name for name in zone_names()}
    if _key(text) in by_key:
        return by_key[_key(text)]
    # A legacy alias typed in full ("US/Eastern") is still a zone; "localtime", "Factory" and
    # the posix/ and right/ copies are not places a member lives in.
    if "/" not in text or text.startswith(("posix/", "right/")):
        return None
    if text not in available_timezones():
        return None
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a region's directory
        return None
    return text


def close_matches(raw: str, limit: int = 3) -> list[str]:
    """Zones a typo most likely meant: by the city, then by the whole name."""
    import difflib  # only for a name typed wrong: not worth its memory in every bot

    wanted = _key(raw)
    if not wanted:
        return []
    cities = {_key(name.rsplit("/", 1)[-1]): name for name in zone_names()}
    found = difflib.get_close_matches(wanted, cities, n=limit, cutoff=0.6)
    matches = [cities[city] for city in found]
    if len(matches) < limit:
        names = {_key(name): name for name in zone_names()}
        for key in difflib.get_close_matches(wanted, names, n=limit, cutoff=0.6):
            if names[key] not in matches:
                matches.append(names[key])
    return matches[:limit] or search(raw, limit)


def likely_zone(locale: str | None) -> str | None:
    if not locale:
        return None
    return LIKELY_ZONE.get(locale) or LIKELY_ZONE.get(locale.split("-")[0])
