"""ktirt: SAKT mastery tracing and Wide & Deep IRT item health on one set of canonical events."""

from ktirt.errors import InputError, SettingsError

__all__ = ["InputError", "SettingsError"]
