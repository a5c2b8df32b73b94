"""Fixtures for the shell tests: QEMU 7.2's recorded schema and a fake QOM tree."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from emutui.core.model import PropertyNode
from emutui.shell.schema import Schema

# The Renode stand-in and vrtd simulator fixtures, for the Renode and vrtd modes.
from tests.renode.conftest import (  # noqa: F401
    board,
    renode_config,
    renode_config_file,
    standin,
)
from tests.vrtd.conftest import sim, sim_factory, sock_dir  # noqa: F401

DATA = Path(__file__).parent / "data"


def load_schema_entries() -> list[dict[str, Any]]:
    """query-qmp-schema of qemu-system-x86_64 7.2 (-M pc), recorded: 1,051 entries."""
    with gzip.open(DATA / "qmp-schema-qemu-7.2.json.gz", "rt") as f:
        entries: list[dict[str, Any]] = json.load(f)
    return entries


@pytest.fixture(scope="session")
def schema() -> Schema:
    return Schema.from_introspection(load_schema_entries())


FAKE_TREE = {
    "/": ["machine", "objects", "chardevs"],
    "/machine": ["peripheral", "peripheral-anon", "unattached", "i440fx"],
    "/machine/peripheral": ["edu0"],
    "/machine/peripheral/edu0": ["bus master[0]"],
    "/machine/peripheral/edu0/bus master[0]": [],
}


class FakeQom:
    """list_props over FAKE_TREE, counting calls (to check caching)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def list_props(self, path: str) -> list[PropertyNode]:
        self.calls.append(path)
        if path not in FAKE_TREE:
            from emutui.core.errors import NotFoundError

            raise NotFoundError(f"Device '{path}' not found")
        base = path.rstrip("/")
        out = [PropertyNode(n, f"{base}/{n}", "child<x>", True) for n in FAKE_TREE[path]]
        out.append(PropertyNode("type", path, "string"))
        if path.endswith("edu0"):
            out.append(PropertyNode("dma_mask", path, "uint64"))
            out.append(PropertyNode("realized", path, "bool"))
        return out
