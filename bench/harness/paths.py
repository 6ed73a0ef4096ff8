"""Where things are; puts the repository first on the import path (db, advice, sandbox, cogs
of this checkout, whatever is installed)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
sys.path.insert(0, str(REPO))
