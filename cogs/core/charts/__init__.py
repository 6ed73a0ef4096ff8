"""Charts as a service: /progress and the year-end check-in both draw through ``service``.

- ``service``: the one interface features use (``Charts.chart``, ``Chart``, ``CHART_FILENAME``).
- ``pool``: worker processes that draw, with a cache of each member's latest chart.
- ``worker``: the worker's own small program (``python -m cogs.core.charts.worker``).
- ``drawing``: the chart itself (Pillow), loaded only in workers.
- ``describe``: the chart in words, its text alternative (in the bot's process).
- ``samples``, ``cache``: what a chart is drawn from, and the cache.

Kept free of imports: the worker imports this package and must stay small.
"""
