"""What the benchmarks share; each benchmark in bench/ keeps only its scenario and its report.

* ``paths``: the repository, first on the import path;
* ``machine``: the machine, its load, the code measured;
* ``stats``: percentiles, latency summaries, sizes, table rules;
* ``texts``: sample sentences, text lengths, time zones;
* ``processes``: /proc readers, and children started, sampled and always stopped;
* ``database``: the benchmarks' own PostgreSQL database, bulk inserts;
* ``journals``: members' journals made up and bulk-loaded (SQLite, PostgreSQL COPY);
* ``bots``: Crossroads and the bare baseline, each in a process of its own;
* ``emulator``, ``operations``: the emulator in the benchmark's process, members' operations
  on it, open and closed loads;
* ``emulator_server``, ``jobs``: the emulator in a process of its own, and timed jobs
  (check-ins, weekly posts) delivered by real bots through it;
* ``dm_load``: members writing to a bot in their DMs through that emulator, the answers
  paired with the DMs and timed on the emulator's clock;
* ``checkin_load``: members with a check-in due, as bench/checkins.py delivers them and
  bench/moderation.py takes for its baseline;
* ``bot_names``: the only names taken from the bot's framework (cogs/).
"""

import harness.paths  # noqa: F401 (this checkout first on the import path, before any module here)
