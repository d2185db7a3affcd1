"""The one error type the CLI turns into a one-line message (no traceback)."""

from __future__ import annotations


class ShipmlError(Exception):
    """A problem the user can fix: the message says what is wrong and how to fix it.

    The CLI prints ``shipml: error: <message>`` on one line and exits non-zero.
    """

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        # Keep messages on one line: the CLI contract is a single line per error.
        super().__init__(" ".join(message.split()))
