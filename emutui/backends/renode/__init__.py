"""The Renode backend: robot port for control, the Monitor for state, side channels for output.

See ``docs/renode.md`` for the target keys and how to point emutui at a real Renode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emutui.backends.base import BackendSpec, Connector
from emutui.backends.renode.launcher import start, validate

if TYPE_CHECKING:
    from emutui.core.instance import Instance


def make_connector(instance: Instance, aux: bool = True) -> Connector:
    from emutui.backends.renode.connector import RenodeConnector

    return RenodeConnector(instance, aux)


BACKEND = BackendSpec(name="renode", validate=validate, connector=make_connector, start=start)

__all__ = ["BACKEND", "make_connector"]
