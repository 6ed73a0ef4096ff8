"""The framework every feature uses: public names, one job per module.

- ``bot``: the bot class and what it is wired with (database, content, cipher, clock, charts).
- ``tree``, ``sync``: the command tree (every error answered) and syncing commands when changed.
- ``errors``, ``reply``: how failures and answers reach a member, privately.
- ``routing``, ``cog``: buttons and forms routed by ``custom_id``, declared on the handlers of a
  ``FeatureCog`` with ``@button`` and ``@form``.
- ``checks``: who may configure a server, and where the bot may speak.
- ``text``, ``style``: text that is safe to send or keep; colours and timestamps.
- ``points``, ``summary``: how a point of the essay and a member's progress are shown.
- ``reflection_form``, ``entries``: the shared reflection form and the entry picker.
- ``jobs/``: timed jobs (loop, dispatcher, pace, and the cog base that runs them).
- ``charts/``: charts as a service, drawn in worker processes.

Kept free of imports: the chart worker (``python -m cogs.core.charts.worker``) imports this
package, and must load nothing of the bot with it.
"""
