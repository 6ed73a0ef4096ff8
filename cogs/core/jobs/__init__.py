"""Timed jobs (DM check-ins, weekly posts), built once for every kind.

- ``loop``: ticks, sleeps, survives anything, can be woken early.
- ``dispatcher``: a batch at a time: claim with a lease (``db.jobs``), prepare, pace, send, record.
- ``pace``: one request budget under Discord's limit, shared by every process and job kind.
- ``cog``: ``TimedJobCog``, which starts the loop once connected, wakes it and stops it; a job
  kind gives it only its dispatcher.

What is due is decided by pure rules in ``advice/`` (schedule, checkins, weekly).
"""
