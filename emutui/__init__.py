"""emutui: one terminal console for many emulator instances."""

__version__ = "0.1.0"
