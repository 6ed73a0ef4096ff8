"""The baseline of bench/checkins.py: the least a discord.py bot can do to deliver check-ins.

A bare ``discord.Client`` (no intents, imports nothing of Crossroads) that logs in, connects,
and sends one short plain-text DM with a nonce to each channel the emulator's process
(bench/harness/emulator_server.py) reported, ``--concurrency`` at a time, as fast as it can;
then prints ``{"sent": n, "errors": n}`` and exits.

    python bench/bare_sender.py --root ROOT --control CONTROL [--concurrency 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json

import aiohttp
import discord
import yarl


async def send_all(args: argparse.Namespace) -> None:
    """Log in, connect, send plain DMs with nonces."""
    async with aiohttp.ClientSession() as http, http.get(f"{args.control}/channels") as response:
        channels: dict[str, int] = await response.json()
    discord.http.Route.BASE = f"{args.root}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
        args.root.replace("http", "ws", 1) + "/gateway"
    )
    client = discord.Client(intents=discord.Intents.none())
    sent = errors = 0
    finished = asyncio.Event()

    async def send() -> None:
        nonlocal sent, errors
        gate = asyncio.Semaphore(args.concurrency)

        async def one(index: int, channel_id: int) -> None:
            nonlocal sent, errors
            async with gate:
                channel = client.get_partial_messageable(
                    channel_id, type=discord.ChannelType.private
                )
                try:
                    await channel.send(f"Check-in {index}: how is it going?", nonce=f"bare-{index}")
                    sent += 1
                except discord.HTTPException:
                    errors += 1

        await asyncio.gather(*(one(i, c) for i, c in enumerate(channels.values())))
        finished.set()

    started = False

    @client.event
    async def on_connect() -> None:
        nonlocal started
        if not started:  # the same moment the Crossroads loop first ticks
            started = True
            asyncio.get_running_loop().create_task(send())

    async with client:
        runner = asyncio.create_task(client.start("bench"))
        waiter = asyncio.create_task(finished.wait())
        await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        await client.close()
        await asyncio.gather(runner, return_exceptions=True)
    print(json.dumps({"sent": sent, "errors": errors}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--concurrency", type=int, default=500)
    asyncio.run(send_all(parser.parse_args()))


if __name__ == "__main__":
    main()
