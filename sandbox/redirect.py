"""Aim discord.py at another Discord (the emulator): the only two places discord.py 2.7 needs
changed. A module of its own, so a bot run against an emulator in another process
(`DISCORD_EMULATOR_URL`) imports this and not the emulator (aiohttp's server, jsonschema)."""

import discord.gateway
import discord.http
import yarl


def point_discord_at(api_base: str, gateway_url: str) -> None:
    discord.http.Route.BASE = api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
