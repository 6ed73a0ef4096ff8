"""discord.py's per-channel rate-limit buckets, let go of once a channel is done with.

This relies on discord.py beyond its public API, as cogs/core/tree.py does (the other such
module); tests/cogs/test_ratelimits.py fails when a discord.py release changes what it uses:
``HTTPClient._buckets`` and ``_bucket_hashes``, ``Ratelimit._pending_requests`` and
``_sleeping``.

Why: discord.py keeps a bucket per channel, lets one go only after 300 idle seconds, and,
once it holds 256, scans them all each time it makes a new one. Check-ins to 10,000 members
make 10,000 buckets, so the scans grow with the square of the run: 50 million
``is_inactive`` calls, half the profiled time of such a run (bench/checkins.py). A check-in's
channel gets its next message a week or more later, so its bucket is of no use after the send.
"""

import logging

from discord.http import HTTPClient, Ratelimit, Route

log = logging.getLogger(__name__)

SEND_ROUTE = Route("POST", "/channels/{channel_id}/messages", channel_id=0)


def release_channel_bucket(http: HTTPClient, channel_id: int) -> None:
    """Let go of the message-sending bucket of a channel just written to, when it holds
    nothing back (no request on its way or waiting, requests left or its window over);
    discord.py learns a bucket afresh from the next answer, as after its own clean-up.

    Only a saving: should a discord.py release have changed what it reads, it does nothing
    (and says so once), never failing the send it follows."""
    global _unavailable
    if _unavailable:
        return
    try:
        _release(http, channel_id)
    except AttributeError:
        _unavailable = True
        log.warning("discord.py changed its rate-limit buckets: they are kept as it keeps them")


_unavailable = False


def _release(http: HTTPClient, channel_id: int) -> None:
    route = SEND_ROUTE.key
    learned = http._bucket_hashes.get(route)  # the key is the route's until Discord names it
    for prefix in (route, learned) if learned else (route,):
        key = f"{prefix}:{channel_id}"
        bucket = http._buckets.get(key)
        if bucket is not None and _holds_nothing_back(bucket):
            del http._buckets[key]


def _holds_nothing_back(bucket: Ratelimit) -> bool:
    return (
        bucket.outgoing == 0
        and not bucket._pending_requests
        and not bucket._sleeping.locked()
        and (bucket.remaining > 0 or bucket.is_expired())
    )
