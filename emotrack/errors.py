"""Exceptions that carry a one-line, user-facing message.

The CLI prints ``emotrack: error: <message>`` for any :class:`EmotrackError` and exits non-zero;
everything else is a bug and keeps its traceback.
"""


class EmotrackError(Exception):
    """Base class: an error whose message is fit to show a user as is."""

    exit_code = 2


class AudioError(EmotrackError):
    """Audio could not be read or decoded (missing, corrupt or unsupported file)."""


class DeviceError(EmotrackError):
    """No usable audio input device (unknown name/index, none present, or it failed to open)."""


class ModelError(EmotrackError):
    """A model file is missing, is not ONNX, or breaks the model contract (metadata, shapes)."""


class ConfigError(EmotrackError):
    """Bad command-line option or configuration file value."""


class OutputError(EmotrackError):
    """A result file could not be written (disk full, permission, a yanked drive)."""


class PortInUseError(EmotrackError):
    """A server could not bind its port."""
