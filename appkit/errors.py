"""One exception tree for everything appkit reports to a user.

Every error a user can cause (bad file, bad flag, missing model) is an ``AppkitError`` whose
message is complete on its own: it names the file, line or value and says what was expected.
The CLI prints that message and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class AppkitError(Exception):
    """Base of all errors appkit raises on purpose."""

    exit_code: int = 1


class ConfigError(AppkitError):
    """A setting, flag or appkit.toml value is invalid."""

    exit_code = 2


class DataError(AppkitError):
    """An input file (history, corpus, labelled data) cannot be used as given."""


class ModelError(AppkitError):
    """A model cannot be built, found or loaded."""


class CheckpointError(ModelError):
    """A training checkpoint is missing, incomplete or does not match the run."""


class TrainingError(AppkitError):
    """Training cannot start or continue (e.g. nothing to train on)."""


class GenerationError(AppkitError):
    """A reply cannot be generated (e.g. the prompt does not fit the context)."""


class OverloadedError(GenerationError):
    """Too many requests are already waiting for the model; try again shortly."""


class NotEnoughDataError(AppkitError):
    """Too little to work on: no conversations in a report's period, too few new ones to retrain on."""

    exit_code = 4


class StorageError(AppkitError):
    """The database cannot be reached, is at an unknown schema, or a record is missing."""


class NotFoundError(StorageError):
    """A conversation, model or other record does not exist."""


class SafetyError(AppkitError):
    """A safety backend or policy cannot be used as configured."""


class TemplateError(AppkitError):
    """A prompt template is missing or was rendered with a missing variable."""
