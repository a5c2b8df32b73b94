"""QEMU backend: launcher (command line, detached start) and QMP connector."""

from __future__ import annotations

from emutui.backends.base import BackendSpec, Connector
from emutui.backends.qemu.launcher import start, validate
from emutui.core.instance import Instance


def make_connector(instance: Instance, aux: bool) -> Connector:
    from emutui.backends.qemu.connector import QemuConnector

    return QemuConnector(instance, aux)


BACKEND = BackendSpec(name="qemu", validate=validate, connector=make_connector, start=start)
