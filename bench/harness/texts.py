"""What members write and where they live: sample sentences, text lengths, time zones."""

from __future__ import annotations

import math
import random

_EITHER = (
    "I keep coming back to what a slower year would cost me.",
    "Talked it through with an old friend and felt lighter afterwards.",
    "The money question scares me less than it did in spring.",
    "Some days the quiet sounds like freedom, some days like giving up.",
    "I wrote down what I would regret at eighty and it was not the job.",
    "Still unsure, but the reasons sound more like mine than other people's now.",
    "Noticed I only want the title when I am tired.",
    "A good week: I did the work for its own sake and nobody saw it.",
)
# Journals (bench/interactions.py, memory.py, journal.py): some German, French, an emoji.
SENTENCES = (
    *_EITHER,
    "My supervisor asked why I wanted this and I had no short answer.",
    "Read three papers this month and understood one of them properly — progress.",
    "Der Gedanke an fünf Jahre Promotion macht mir weniger Angst als früher.",
    "Je me demande si c'est la recherche que j'aime ou l'idée d'être chercheuse.",
    "Spent the evening reproducing a result; it failed, and oddly I enjoyed it.",
    "If the lab closed tomorrow, would I still read these papers? Probably yes. 🙂",
    "Family dinner again: everyone has an opinion, nobody has to live with it.",
    "I am learning to tell tiredness from doubt; they feel the same at midnight.",
)
# The check-in members' and the /stats members' (bench/checkins.py, moderation.py).
CHECKIN_SENTENCES = (
    *_EITHER,
    "My advisor's career looks less like freedom up close than it did from far away.",
    "If nobody ever cited me, would I still open the notebook on Saturday?",
)

# Where members live. None: never set a zone (UTC).
ZONES: tuple[str | None, ...] = (
    None,
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Mexico_City",
    "America/Chicago",
    "America/Bogota",
    "America/New_York",
    "America/Halifax",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Atlantic/Azores",
    "Europe/London",
    "Africa/Lagos",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Warsaw",
    "Africa/Cairo",
    "Europe/Helsinki",
    "Africa/Nairobi",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Asia/Tehran",
    "Asia/Dubai",
    "Asia/Kabul",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Yangon",
    "Asia/Bangkok",
    "Asia/Jakarta",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Australia/Perth",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Australia/Darwin",
    "Australia/Adelaide",
    "Australia/Sydney",
    "Pacific/Noumea",
    "Pacific/Auckland",
)


def text_of_length(rng: random.Random, length: int) -> str:
    """Prose of about ``length`` characters (never more), from SENTENCES."""
    parts: list[str] = []
    size = 0
    while size < length:
        sentence = rng.choice(SENTENCES)
        parts.append(sentence)
        size += len(sentence) + 1
    return " ".join(parts)[:length].rstrip() or "ok"


def reflection_length(rng: random.Random) -> int:
    """Log-normal, median 300 characters: mostly a paragraph, sometimes a page, within the
    form's 1 to 4,000 characters."""
    return max(15, min(4000, int(rng.lognormvariate(math.log(300), 0.9))))


def journal_size(rng: random.Random, *, median: float = 12, largest: int = 400) -> int:
    """Entries a member who writes has: log-normal, a few with a year of weekly writing."""
    return max(1, min(largest, int(rng.lognormvariate(math.log(median), 1.0))))
