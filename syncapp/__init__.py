"""syncapp: live folder-to-remote sync with a terminal UI."""

__version__ = "0.1.0"
