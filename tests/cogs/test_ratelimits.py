"""A channel's rate-limit bucket is let go of once it holds nothing back (cogs.core.ratelimits);
this fails, too, when a discord.py release changes the internals it relies on."""

import asyncio

from discord.http import HTTPClient

from cogs.core.ratelimits import SEND_ROUTE, release_channel_bucket


async def test_only_buckets_that_hold_nothing_back_are_let_go() -> None:
    http = HTTPClient(asyncio.get_running_loop())
    route = SEND_ROUTE.key
    http._bucket_hashes[route] = "hash"  # as once Discord has named the route's bucket
    idle, named = f"{route}:1", "hash:2"
    on_its_way, spent = "hash:3", "hash:4"
    for key in (idle, named, on_its_way, spent):
        http.get_ratelimit(key)
    http._buckets[on_its_way].outgoing = 1
    http._buckets[spent].remaining = 0
    http._buckets[spent].expires = asyncio.get_running_loop().time() + 5

    for channel_id in (1, 2, 3, 4):
        release_channel_bucket(http, channel_id)

    assert idle not in http._buckets
    assert named not in http._buckets
    assert on_its_way in http._buckets  # a request still on its way counts on it
    assert spent in http._buckets  # its window still holds the next request back
