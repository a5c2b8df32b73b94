"""Targets and daemons from TOML.

Looked up in order: --config, $EMUTUI_CONFIG, ./emutui.toml, then the XDG config dir.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emutui.core.errors import ConfigError, NotFoundError
from emutui.core.targets import TargetConfig

CONFIG_NAME = "emutui.toml"


@dataclass
class Config:
    path: Path | None
    targets: dict[str, TargetConfig] = field(default_factory=dict)
    daemons: dict[str, TargetConfig] = field(default_factory=dict)
    ui: dict[str, Any] = field(default_factory=dict)
    hosts: dict[str, Any] = field(default_factory=dict)  # name -> remote.ssh.HostConfig
    history: dict[str, Any] = field(default_factory=dict)  # [history]: kept runs (core/runs.py)

    def target(self, name: str) -> TargetConfig:
        if name in self.targets:
            return self.targets[name]
        known = ", ".join(sorted(self.targets)) or "none"
        where = f" in {self.path}" if self.path else " (no config file found)"
        raise NotFoundError(f"unknown target {name!r}{where} (targets: {known})")


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return p.absolute()
    env = os.environ.get("EMUTUI_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p} (from $EMUTUI_CONFIG)")
        return p.absolute()
    local = Path.cwd() / CONFIG_NAME
    if local.is_file():
        return local
    from platformdirs import user_config_path

    xdg = user_config_path("emutui") / CONFIG_NAME
    if xdg.is_file():
        return xdg
    return None


def load_config(explicit: str | os.PathLike[str] | None = None, validate: bool = True) -> Config:
    path = find_config(explicit)
    if path is None:
        return Config(path=None)
    return parse_config(path, validate=validate)


def parse_config(path: Path, validate: bool = True) -> Config:
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 (byte {e.start}); TOML files are UTF-8") from e
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from e
    cfg = Config(path=path)
    known = {"targets", "daemons", "ui", "logs", "hosts", "history"}
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"{path}: {key}: unknown section "
                "(expected targets, daemons, hosts, logs, history or ui)"
            )
    from emutui.core.runs import HistoryLimits

    try:
        HistoryLimits.from_config(raw.get("history"))
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"{path}: {e}") from e
    cfg.history = dict(raw.get("history") or {})
    logs = raw.get("logs", {})
    if not isinstance(logs, dict) or set(logs) - {"max_bytes", "generations"}:
        raise ConfigError(f"{path}: logs: expected a table with max_bytes and generations")
    for section, dest in (("targets", cfg.targets), ("daemons", cfg.daemons)):
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section}: expected a table of [{section}.NAME] tables")
        for name, body in table.items():
            if not isinstance(body, dict):
                raise ConfigError(f"{path}: {section}.{name}: expected a table")
            backend = body.get("backend")
            if not isinstance(backend, str):
                raise ConfigError(
                    f"{path}: {section}.{name}.backend: expected a string "
                    f"(qemu, renode or vrtd), got {backend!r}"
                )
            t = TargetConfig(
                name=name,
                backend=backend,
                options={
                    **{f"log_{k}": v for k, v in logs.items()},
                    **{k: v for k, v in body.items() if k != "backend"},
                },
                base_dir=path.parent,
                source=str(path),
                section=section,
            )
            if validate:
                from emutui.backends import get_backend

                try:
                    spec = get_backend(backend)
                except ConfigError as e:
                    raise ConfigError(f"{path}: {section}.{name}.backend: {e}") from e
                spec.validate(t)
            dest[name] = t
    hosts = raw.get("hosts", {})
    if not isinstance(hosts, dict):
        raise ConfigError(f"{path}: hosts: expected a table of [hosts.NAME] tables")
    if hosts:
        from emutui.backends.remote.ssh import HostConfig

        cfg.hosts = {n: HostConfig.from_table(n, b, str(path)) for n, b in hosts.items()}
    ui = raw.get("ui", {})
    if not isinstance(ui, dict):
        raise ConfigError(f"{path}: ui: expected a table")
    cfg.ui = ui
    return cfg
