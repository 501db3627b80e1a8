"""The CLI's own errors: a usage mistake (exit status 2) and a tool that failed to run (3)."""

__all__ = ["UsageError", "ToolFailure"]


class UsageError(Exception):
    """A user error that the CLI reports in one line with exit status 2."""


class ToolFailure(Exception):
    """A tool or simulator that failed to run (exit status 3); the message says where the logs
    are."""
