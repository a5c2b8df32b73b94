"""Backends: QEMU, Renode, vrtd. Each module exposes ``BACKEND: BackendSpec``."""

from __future__ import annotations

import importlib

from emutui.backends.base import BackendSpec
from emutui.core.errors import ConfigError

BACKEND_NAMES = ("qemu", "renode", "vrtd")


def get_backend(name: str) -> BackendSpec:
    if name not in BACKEND_NAMES:
        raise ConfigError(f"unknown backend {name!r} (expected one of: {', '.join(BACKEND_NAMES)})")
    module = importlib.import_module(f"emutui.backends.{name}")
    spec: BackendSpec = module.BACKEND
    return spec
