"""Typed settings loaded from TOML files, with defaults and checks that name the offending key.

Every experiment declares its settings as a (possibly nested) frozen dataclass. Fields may carry limits
in their metadata::

    @dataclass(frozen=True)
    class TrainConfig:
        steps: int = field(default=1000, metadata={"min": 1})
        schedule: str = field(default="karras", metadata={"choices": ("karras", "linear")})

:func:`from_dict` builds such a dataclass from a plain mapping (a parsed TOML file, possibly with
``key.sub=value`` overrides from the command line) and raises :class:`~geomem.errors.ConfigError` for an
unknown key, a wrong type or an out-of-range value, naming the dotted key. :func:`to_dict` and
:func:`dump_toml` write the resolved settings back, so every run folder records exactly what ran.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from geomem.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing .toml file")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as "
                          f"UTF-8") from None
    except (OSError, RecursionError) as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.__class__.__name__}: {exc}); check the "
                          f"file") from None


def load_config(cls: type[T], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> T:
    """Defaults of ``cls``, updated by the TOML file at ``path``, then by dotted ``overrides``."""
    data: dict[str, Any] = load_toml(path) if path is not None else {}
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    return from_dict(cls, data)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key.sub=value`` from the command line; the value is read as a TOML value if it can be."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. chains=8)")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        value = raw  # a bare string
    return key.strip(), value


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is not a table")
    node[parts[-1]] = value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "", base: T | None = None) -> T:
    """Build dataclass ``cls`` from ``data``, checking keys, types and limits.

    Keys missing from ``data`` keep the values of ``base`` (the field's default instance for a nested
    table), so a TOML table that sets one key of a nested setting keeps the other defaults of its parent.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'} must be a table, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f" in [{prefix}]" if prefix else ""
        raise ConfigError(
            f"unknown config key {prefix + '.' if prefix else ''}{unknown[0]}{where}; "
            f"known keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        nested_base = getattr(base, name) if base is not None else fields[name].default
        if dataclasses.is_dataclass(hints[name]) and dataclasses.is_dataclass(nested_base):
            kwargs[name] = from_dict(hints[name], value, key, base=nested_base)
        else:
            kwargs[name] = _coerce(hints[name], value, key)
        _check_limits(fields[name], kwargs[name], key)
    return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {type(value).__name__} {value!r}")
        item_tp = args[0] if args else Any
        items = [_coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(float(value)):
            raise ConfigError(f"{key} must be finite, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {type(value).__name__} {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{key} must be a path string, got {value!r}")
        return Path(value)
    raise ConfigError(f"{key}: unsupported setting type {tp}")


class Settings:
    """Base of every settings dataclass: the field limits (metadata ``min``, ``max``, ``gt``, ``choices``) are
    checked when an instance is constructed, from Python as from TOML, and a non-finite number is refused.

    >>> from dataclasses import dataclass, field
    >>> @dataclass(frozen=True)
    ... class Steps(Settings):
    ...     steps: int = field(default=10, metadata={"min": 1})
    >>> Steps(steps=0)
    Traceback (most recent call last):
    ...
    geomem.errors.ConfigError: steps must be >= 1, got 0
    """

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            _check_limits(f, getattr(self, f.name), f.name)


def _check_limits(f: dataclasses.Field, value: Any, key: str) -> None:
    meta = f.metadata
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if v is None:
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{key} must be finite, got {v!r}")
        if "min" in meta and v < meta["min"]:
            raise ConfigError(f"{key} must be >= {meta['min']}, got {v!r}")
        if "max" in meta and v > meta["max"]:
            raise ConfigError(f"{key} must be <= {meta['max']}, got {v!r}")
        if "gt" in meta and not v > meta["gt"]:
            raise ConfigError(f"{key} must be > {meta['gt']}, got {v!r}")
        if "choices" in meta and v not in meta["choices"]:
            raise ConfigError(f"{key} must be one of {list(meta['choices'])}, got {v!r}")


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as plain TOML-compatible data (paths as strings, tuples as lists, None dropped)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v) if getattr(v, f.name) is not None}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(obj)


def dump_toml(data: dict[str, Any]) -> str:
    """Serialize nested plain data to TOML (tables for dicts; scalars and lists of scalars)."""
    lines: list[str] = []

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        raise ConfigError(f"cannot write {type(v).__name__} to TOML")

    def table(d: dict[str, Any], name: str) -> None:
        simple = {k: v for k, v in d.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in d.items() if isinstance(v, dict)}
        if name and (simple or not nested):
            lines.append(f"[{name}]")
        for k, v in simple.items():
            lines.append(f"{k} = {scalar(v)}")
        if simple:
            lines.append("")
        for k, v in nested.items():
            table(v, f"{name}.{k}" if name else k)

    table(data, "")
    return "\n".join(lines).rstrip() + "\n"
