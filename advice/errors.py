"""Errors whose message is safe to show a member as it is.

Raised anywhere below the cogs (rules, queries); the command tree turns them into
an ephemeral explanation. Anything else is a bug and gets an apology with an error id.
"""


class UserFacingError(Exception):
    """An expected failure with a message written for the member who caused it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(UserFacingError):
    """The thing asked for does not exist, or is not the caller's to see."""


class InvalidInput(UserFacingError):
    """What the member sent cannot be used as it is."""
