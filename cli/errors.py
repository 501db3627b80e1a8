"""The CLI's own error: a usage mistake reported in one line with exit status 2."""

__all__ = ["UsageError"]


class UsageError(Exception):
    """A user error that the CLI reports in one line with exit status 2."""
