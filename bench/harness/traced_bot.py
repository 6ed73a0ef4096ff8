"""Run a Python script (``bot.py run``) with tracemalloc on: each SIGUSR1 writes a snapshot of
what its Python code holds to ``$TRACEMALLOC_DIR/<n>.snapshot`` (bench/memory.py --trace),
so what grows between two samples can be named by the line that allocated it."""

import os
import runpy
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 8  # deep enough to see which of our lines a library allocation came from


def main() -> None:
    directory = Path(os.environ["TRACEMALLOC_DIR"])
    taken = 0

    def snapshot(_signal: int, _frame: FrameType | None) -> None:
        nonlocal taken
        taken += 1
        tracemalloc.take_snapshot().dump(str(directory / f"{taken:03d}.snapshot"))

    signal.signal(signal.SIGUSR1, snapshot)
    tracemalloc.start(FRAMES)
    script, *args = sys.argv[1:]
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
