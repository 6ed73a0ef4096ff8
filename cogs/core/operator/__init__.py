"""The operator's side of the bot: its settings, its start-up, and the commands run beside it
(key rotation, backups). bot.py parses the command line and calls in here.
"""
