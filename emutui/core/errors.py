"""Typed errors. Every message is one line a user can act on.

The CLI prints ``str(err)`` and exits 1; the TUI shows it in a notification.
Anything that is not an EmutuiError is a bug and gets a traceback.
"""

from __future__ import annotations

MAX_MESSAGE = 400


class EmutuiError(Exception):
    """Base class: a failure to be reported to the user, not a bug.

    Its text is always one line of bounded length, whatever a peer put in it
    (qemu.qmp quotes raw bytes over several lines; a daemon may send kilobytes).
    ``error_class`` / ``desc``: the peer's own error, when it has one (QMP's
    ``{"class": "DeviceNotFound", "desc": …}``), for callers that pass it on.
    """

    error_class: str | None = None
    desc: str | None = None

    def __str__(self) -> str:
        from emutui.core.sanitize import display_line  # peer text: no escapes, no controls

        text = " ".join(display_line(super().__str__().replace("\n", " ")).split())
        return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class ConfigError(EmutuiError):
    """The config file is malformed: says file, key and what was expected."""


class NotFoundError(EmutuiError):
    """Unknown target, instance, region, property or device."""


class AlreadyExistsError(EmutuiError):
    """An instance of that name already exists."""


class BusyError(EmutuiError):
    """Another client holds a single-client channel (a QMP monitor, a serial socket)."""


class DisconnectedError(EmutuiError):
    """The emulator or daemon went away (or was never there)."""


class BackendError(EmutuiError):
    """The emulator or daemon answered with an error; the message is its own."""


class ProtocolError(EmutuiError):
    """The peer sent something that does not follow its protocol (garbage, truncation)."""


class UnsupportedError(EmutuiError):
    """The backend or target lacks the capability asked for."""


class PermissionDeniedError(EmutuiError):
    """The daemon refused the request for this user."""


class RangeError(EmutuiError):
    """An offset or length falls outside a region, or is misaligned."""


class InstanceDeadError(EmutuiError):
    """The instance's process is gone."""


class NoAnswerError(BusyError):
    """The peer is there but did not answer within its deadline (stopped, wedged, hostile).

    A BusyError subclass so the TUI keeps treating it as "alive, retry later".
    """
