from collections.abc import AsyncIterator

import pytest

from sandbox import Emulator
from tests.sandbox.clients import pointed_emulator


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator discord.py talks to (test_emulator.py keeps one of its own, with a short
    response deadline)."""
    async with pointed_emulator() as emulator:
        yield emulator
