"""Typed appkit.toml tables: each is a dataclass, checked when settings load.

Every part of appkit that reads appkit.toml (``[safety]``, ``[tui]``, ``[serve]``) and every
app (``[support]``, ...) declares its table as a frozen dataclass whose field defaults are the
defaults, so they live in one place (darrenburns/posting's config.py is the model). Loading
turns a TOML table into that dataclass with pydantic, strictly: a misspelled key or a value of
the wrong type is a ConfigError that names the file, the table and the key, never a setting
silently ignored or a string that happens to read as a number.

    @dataclass(frozen=True)
    class SupportSettings:
        reply_mode: Literal["grounded", "select", "generate"] = "grounded"
        min_confidence: float = -2.5
        facts: dict[str, str] = field(default_factory=dict)   # [support.facts], free-form keys

pydantic is imported only when some appkit.toml has a table to check.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from appkit.errors import ConfigError

T = TypeVar("T")
Key = tuple[str, ...]


@dataclass
class TomlFiles:
    """appkit.toml files merged (later files win), remembering which file set each key."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[Key, Path] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @classmethod
    def read(cls, paths: Iterable[Path]) -> TomlFiles:
        """Parse and merge every existing file of ``paths``.

        Raises:
            ConfigError: a file is not valid TOML or cannot be read.
        """
        merged = cls()
        for path in paths:
            if path.is_file():
                merged.add(path, _read_toml(path))
        return merged

    def add(self, path: Path, data: dict[str, Any]) -> None:
        """Merge ``data`` (read from ``path``) over what is there."""
        self.files.append(path)
        _merge_into(self.data, data, path, (), self.origins)

    def file_of(self, key: Key) -> str:
        """The file that set ``key`` (or the table holding it)."""
        for end in range(len(key), 0, -1):
            if key[:end] in self.origins:
                return str(self.origins[key[:end]])
        return str(self.files[-1]) if self.files else "appkit.toml"

    def table(self, name: str) -> dict[str, Any]:
        """The top-level table ``name`` ({} when no file has one).

        Raises:
            ConfigError: ``name`` is a plain value rather than a table.
        """
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.file_of((name,))}: {name} = {_toml(value)}: expected a table ([{name}]).")
        return value

    def check_tables(self, known: Iterable[str]) -> None:
        """Refuse a top-level table nobody reads (a typo such as ``[suport]``)."""
        names = list(known)
        for name in self.data:
            if name not in names:
                raise ConfigError(f"{self.file_of((name,))}: unknown table [{name}]{_suggest(name, names)}; "
                                  f"appkit.toml tables: {', '.join(names)}.")


def parse_section(kind: type[T], table: Mapping[str, Any], *, name: str, files: TomlFiles | None = None) -> T:
    """``table`` (the TOML table ``[name]``) as a ``kind``; ``kind()`` when it is empty.

    Raises:
        ConfigError: an unknown key, or a value that is not of its field's type, naming the file
            and the key; or a check of ``kind`` itself (``__post_init__``) failed.
    """
    files = files or TomlFiles()
    if not table:
        return kind()
    from pydantic import ValidationError

    try:
        return _adapter(kind).validate_json(json.dumps(table, default=str))
    except ValidationError as e:
        lines = dict.fromkeys(_problem(kind, table, name, files, err) for err in e.errors())
        raise ConfigError("\n".join(lines)) from None
    except ConfigError as e:  # the section's own check, e.g. a port out of range
        raise ConfigError(f"{files.file_of((name,))}: {e}") from None


def describe(annotation: Any, *, many: bool = False) -> str:
    """What a value of ``annotation`` looks like, in a user's words: ``float`` -> "a number"
    (``many``: "numbers", for the values of a table or a list)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(_toml(a) for a in args)
    if origin in (Union, types.UnionType):
        flat = [b for a in args for b in (get_args(a) if get_origin(a) in (Union, types.UnionType) else (a,))]
        choices = tuple(v for a in flat if get_origin(a) is Literal for v in get_args(a))
        others = [a for a in flat if get_origin(a) is not Literal and a is not type(None)
                  and not (a is int and float in flat)]  # a whole number is a number
        kinds = list(dict.fromkeys([*(describe(a, many=many) for a in others),
                                    *([describe(Literal[choices])] if choices else [])]))
        return kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
    if origin in (dict, Mapping):
        return f"a table of {describe(args[1], many=True)}" if args and args[1] is not Any else "a table"
    if origin in (list, tuple):
        return f"a list of {describe(args[0], many=True)}" if args and args[0] is not Any else "a list"
    if dataclasses.is_dataclass(annotation):
        return "a table of " + ", ".join(f.name for f in dataclasses.fields(annotation))
    words = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
    plural = {bool: "true/false values", int: "whole numbers", float: "numbers", str: "strings"}
    return (plural if many else words).get(annotation, getattr(annotation, "__name__", str(annotation)))


# -- checking ---------------------------------------------------------------------------------


@cache
def _adapter(kind: type[Any]) -> Any:
    """A strict pydantic TypeAdapter of ``kind`` that refuses unknown keys at every level.

    Strict JSON mode: TOML's values are JSON's (plus dates, passed as strings), and in it
    "yes" is not a boolean nor "0.5" a number, while 1 is a fine float.
    """
    from pydantic import ConfigDict, TypeAdapter

    for dc in _dataclasses_in(kind):
        if "__pydantic_config__" not in vars(dc):
            dc.__pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[attr-defined]
    return TypeAdapter(kind)


def _dataclasses_in(annotation: Any, seen: set[Any] | None = None) -> list[type[Any]]:
    seen = set() if seen is None else seen
    found: list[type[Any]] = []
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type) and annotation not in seen:
        seen.add(annotation)
        found.append(annotation)
        for hint in typing.get_type_hints(annotation).values():
            found += _dataclasses_in(hint, seen)
    for arg in get_args(annotation):
        found += _dataclasses_in(arg, seen)
    return found


def _problem(kind: type[Any], table: Mapping[str, Any], name: str, files: TomlFiles, error: Any) -> str:
    """One line for one pydantic error: file, table, key, the value and what was expected."""
    path = _key_path(table, error["loc"])
    where = files.file_of((name, *path))
    if error["type"] in ("unexpected_keyword_argument", "extra_forbidden") and error["loc"][-1] not in path[-1:]:
        path = (*path, str(error["loc"][-1]))  # the unknown key itself (its table passed the walk)
    if error["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        parent = _table_type(_annotation_at(kind, path[:-1]))
        known = [f.name for f in dataclasses.fields(parent)] if dataclasses.is_dataclass(parent) else []
        return (f"{where}: [{'.'.join((name, *path[:-1]))}] unknown key {path[-1]!r}{_suggest(path[-1], known)}; "
                f"known keys: {', '.join(known) or 'none'}.")
    value: Any = table
    for part in path:
        value = value[part]
    expected = describe(_annotation_at(kind, path))
    if error["type"] == "missing":
        return f"{where}: [{name}] {'.'.join(path)} is required: expected {expected}."
    table_name, key = ".".join((name, *path[:-1])), (path[-1] if path else "")
    return f"{where}: [{table_name}] {key} = {_toml(value)}: expected {expected}."


def _key_path(table: Mapping[str, Any], loc: Iterable[Any]) -> Key:
    """The keys of ``loc`` that name values in ``table`` (pydantic adds union members' names)."""
    path: list[str] = []
    node: Any = table
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]  # an item of a list: reported as the list's key
        else:
            break
    return tuple(path)


def _annotation_at(kind: Any, path: Key) -> Any:
    """The type a value at ``path`` inside a ``kind`` must have."""
    annotation = kind
    for part in path:
        annotation = _step(annotation, part)
    return annotation


def _table_type(annotation: Any) -> Any:
    """The dataclass a table must fit, where ``annotation`` allows one (a union's table member)."""
    if get_origin(annotation) in (Union, types.UnionType):
        return next((a for a in get_args(annotation) if dataclasses.is_dataclass(a)), annotation)
    return annotation


def _step(annotation: Any, part: str) -> Any:
    if dataclasses.is_dataclass(annotation):
        return typing.get_type_hints(annotation).get(part, Any)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (dict, Mapping) and args:
        return args[1]
    if origin in (Union, types.UnionType):
        tables = [a for a in args if dataclasses.is_dataclass(a) or get_origin(a) in (dict, Mapping)]
        return _step(tables[0], part) if tables else Any
    return Any


# -- TOML files ---------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}).") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror}).") from None


def _merge_into(base: dict[str, Any], extra: Mapping[str, Any], path: Path, prefix: Key,
                origins: dict[Key, Path]) -> None:
    for key, value in extra.items():
        here = (*prefix, key)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_into(base[key], value, path, here, origins)
        else:
            base[key] = _copy(value)
            origins[here] = path


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def _toml(value: Any) -> str:
    """``value`` as it is written in TOML: "text", true, 0.5, [1, 2]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _suggest(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


__all__ = ["TomlFiles", "describe", "parse_section"]
