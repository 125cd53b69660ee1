"""User-facing errors: the CLI prints their message on one line, never a traceback."""


class NucfmError(Exception):
    """An error caused by the user's input or environment, with a message that says what to do."""


class InputError(NucfmError, ValueError):
    """Malformed or unusable input file."""


class ModelNotFoundError(NucfmError, FileNotFoundError):
    """A model name or path that cannot be resolved to weights on this machine."""
