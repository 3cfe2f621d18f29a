"""The one exception bad input raises, so every stage reports it the same way."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Unusable input: names the file and, where there is one, the column.

    Stages turn it into a one-line message and a non-zero exit before anything is written.
    """

    def __init__(self, message: str, path: str | Path | None = None, column: str | None = None):
        self.path = None if path is None else str(path)
        self.column = column
        self.reason = message
        where = []
        if self.path:
            where.append(self.path)
        if column:
            where.append(f"column '{column}'")
        super().__init__(": ".join([*where, message]))


class SettingsError(InputError):
    """An invalid setting (a params.yaml value); the stage names the settings file."""
