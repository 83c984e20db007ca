"""The one exception type that reaches users: its message is a single line saying what was wrong and the fix."""


class GtRError(Exception):
    """A user-facing error. Scripts print ``str(err)`` on one line and exit with status 2."""
