"""A target from the config, and typed accessors that report mistakes precisely."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emutui.core.errors import ConfigError
from emutui.core.rotating import DEFAULT_GENERATIONS, DEFAULT_MAX_BYTES

# Keys every backend accepts: log rotation (also settable for all targets in [logs]).
COMMON_KEYS = {"log_max_bytes", "log_generations"}


@dataclass(frozen=True)
class TargetConfig:
    """``[targets.NAME]`` or ``[daemons.NAME]`` from a config file."""

    name: str
    backend: str
    options: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)  # relative paths resolve here
    source: str = "<builtin>"  # the file it came from, for error messages
    section: str = "targets"

    def _where(self, key: str) -> str:
        return f"{self.source}: {self.section}.{self.name}.{key}"

    def error(self, key: str, expected: str) -> ConfigError:
        got = self.options.get(key)
        return ConfigError(f"{self._where(key)}: expected {expected}, got {got!r}")

    def str_opt(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        v = self.options.get(key, default)
        if v is None:
            if required:
                raise ConfigError(f"{self._where(key)}: missing (expected a string)")
            return None
        if not isinstance(v, str) or not v:
            raise self.error(key, "a non-empty string")
        return v

    def bool_opt(self, key: str, default: bool = False) -> bool:
        v = self.options.get(key, default)
        if not isinstance(v, bool):
            raise self.error(key, "true or false")
        return v

    def int_opt(self, key: str, default: int | None = None) -> int | None:
        v = self.options.get(key, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(key, "an integer")
        return v

    def list_opt(self, key: str, default: list[str] | None = None) -> list[str]:
        v = self.options.get(key, default if default is not None else [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.error(key, "a list of strings")
        return list(v)

    def path_opt(self, key: str, required: bool = False, must_exist: bool = True) -> Path | None:
        v = self.str_opt(key, required=required)
        if v is None:
            return None
        p = Path(v).expanduser()
        if not p.is_absolute():
            p = self.base_dir / p
        if must_exist and not p.exists():
            raise ConfigError(f"{self._where(key)}: file not found: {p}")
        return p

    def log_limits(self) -> tuple[int, int]:
        """(max bytes per log file, old generations kept) for serial logs and the journal."""
        # 0 is an error like any other value below the minimum, never "the default".
        max_bytes = self.int_opt("log_max_bytes", DEFAULT_MAX_BYTES)
        gens = self.int_opt("log_generations", DEFAULT_GENERATIONS)
        max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
        gens = DEFAULT_GENERATIONS if gens is None else gens
        if max_bytes < 4096:
            raise self.error("log_max_bytes", "at least 4096")
        if gens < 1:
            raise self.error("log_generations", "at least 1")
        return max_bytes, gens

    def check_keys(self, allowed: set[str]) -> None:
        extra = sorted(set(self.options) - allowed - COMMON_KEYS - {"backend"})
        if extra:
            raise ConfigError(
                f"{self._where(extra[0])}: unknown key for backend {self.backend!r} "
                f"(expected one of: {', '.join(sorted(allowed))})"
            )
