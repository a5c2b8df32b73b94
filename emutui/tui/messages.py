"""Messages that carry backend happenings (plain dataclasses from emutui.core) into the UI."""

from __future__ import annotations

from textual.message import Message

from emutui.core.model import Event, InstanceStatus


class StatusChanged(Message):
    """An instance's state changed (or was polled); the newest snapshot replaces older ones."""

    def __init__(self, name: str, status: InstanceStatus) -> None:
        super().__init__()
        self.name = name
        self.status = status

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StatusChanged) and message.name == self.name


class EventsArrived(Message):
    """A batch of events from one instance (batched so 10k events/s stay cheap)."""

    def __init__(self, name: str, events: list[Event], history: bool = False) -> None:
        super().__init__()
        self.name = name
        self.events = events
        self.history = history


class Connected(Message):
    """The instance's primary connector is connected (panes may (re)load)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class InstancesChanged(Message):
    """The set of instances under the state root changed."""
