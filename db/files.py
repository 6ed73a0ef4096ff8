"""Files written so that a crash never leaves half of one: what key files and backups share."""

import os
from pathlib import Path


def sync_directory(directory: Path) -> None:
    """Make a rename or removal in `directory` durable (fsync the directory itself)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
