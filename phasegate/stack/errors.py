"""What can go wrong with local services, each with one clear message."""

from __future__ import annotations


class StackError(Exception):
    """A local service problem; ``str()`` is the message for the user."""


class MissingDependency(StackError):
    """A program or package the stack needs is not installed (the message says how to)."""


class ServiceUnavailable(StackError):
    """A service does not answer (the message says how to start it)."""


class StartFailed(StackError):
    """A process exited or never got ready; ``log_tail`` holds the end of its log."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail
