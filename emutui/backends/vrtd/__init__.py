"""The vrtd backend: V80 FPGA cards behind the vrtd daemon (or ``emutui sim vrtd``).

``wire`` has the struct layouts, ``client`` the async SEQPACKET + SCM_RIGHTS
client, ``connector`` the Connector. A daemon is not started by emutui but
attached to: ``attach`` records an instance whose handles point at its socket.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from emutui.backends.base import BackendSpec, Connector
from emutui.core.handles import Channel, Handles
from emutui.core.targets import TargetConfig

if TYPE_CHECKING:
    from emutui.core.instance import Instance

CONFIG_KEYS = {"socket", "timeout"}


def validate(target: TargetConfig) -> None:
    """``[daemons.NAME]``: ``backend = "vrtd"``, optional ``socket`` and ``timeout``."""
    target.check_keys(CONFIG_KEYS)
    target.str_opt("socket")
    timeout = target.options.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise target.error("timeout", "a positive number of seconds")


def socket_for(target: TargetConfig | None, explicit: str | None = None) -> str:
    """--socket, else the config's ``socket``, else $VRTD_SOCKET, else /run/vrtd.sock."""
    from emutui.backends.vrtd.client import default_socket_path

    if explicit:
        return str(Path(explicit).expanduser().absolute())
    if target is not None:
        sock = target.str_opt("socket")
        if sock:
            p = Path(sock).expanduser()
            return str(p if p.is_absolute() else target.base_dir / p)
    return default_socket_path()


def make_handles(
    name: str, socket_path: str, target: str = "vrtd", simulated: bool = False
) -> Handles:
    return Handles(
        name=name,
        backend="vrtd",
        target=target,
        pid=None,
        channels={"vrtd": Channel(role="vrtd", kind="seqpacket", path=socket_path)},
        simulated=simulated,
        options={"attached": True, "socket": socket_path},
    )


def handles_for(target: TargetConfig, name: str) -> Handles:
    """Handles for a ``[daemons.NAME]`` entry: its socket and, if given, its timeout."""
    handles = make_handles(name, socket_for(target), target=target.name)
    timeout = target.options.get("timeout")
    if timeout is not None:
        handles.options["timeout"] = timeout
    return handles


async def attach(target: TargetConfig, wd: Path, name: str) -> Handles:
    """Record a daemon from the config as an instance (no round trip: it may be down)."""
    handles = handles_for(target, name)
    handles.save(wd)
    return handles


def connector(instance: Instance, aux: bool) -> Connector:
    from emutui.backends.vrtd.connector import VrtdConnector

    return VrtdConnector(instance, aux)


BACKEND = BackendSpec(
    name="vrtd", validate=validate, connector=connector, start=None, attach=attach
)
