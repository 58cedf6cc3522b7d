"""A small typed reader over YAML data that records every problem instead of stopping at the first.

Each accessor returns a usable placeholder when the value is wrong, so that validation can go on
and report *all* problems of a file at once; the caller checks ``problems`` before using results.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, TypeVar

from driftgate.errors import Problem, code_point, quote
from driftgate.spec.names import URL, describe_grammar, without_userinfo
from driftgate.spec.yamlload import KeyPath, Marks

T = TypeVar("T")

_MISSING = object()


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list",
            dict: "mapping", dt.date: "date", dt.datetime: "timestamp"}.get(type(value), type(value).__name__)


def show(value: Any) -> str:
    if value is None:
        return "null"
    text = quote(value) if isinstance(value, str) else f"{type_name(value)} {value!r}"
    if isinstance(value, dt.date):  # YAML timestamps: show them as written, not as datetime.date(...)
        text = f"{type_name(value)} {value.isoformat()}"
    return text if len(text) <= 60 else text[:57] + "..."


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def hidden(value: Any, allowed: str = "-._") -> str:
    """A value that may be a secret pasted into the wrong key: its kind, length and the first character that is
    not allowed when that is punctuation, a space or invisible (which tells nothing of a secret); never a
    letter or digit of it, so never a prefix."""
    if not isinstance(value, str):
        return type_name(value)
    text = f"a string of {len(value)} characters"
    for i, ch in enumerate(value):
        if ch not in _NAME_CHARS and ch not in allowed:
            text += f" whose character {i + 1} ({code_point(ch)}"
            text += f" '{ch}')" if ch.isascii() and ch.isprintable() else ")"
            text += " is not allowed"
            break
    else:
        if any(ch.isupper() for ch in value) and "A" not in allowed:
            text += " with upper-case letters"
    return text + " (the value is not shown: a secret pasted here must not be printed)"


class Reader:
    def __init__(self, marks: Marks) -> None:
        self.marks = marks
        self.problems: list[Problem] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.marks.problem(path, message))

    def warn(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.marks.problem(path, message, level="warning"))

    def mapping(self, data: Any, path: KeyPath, allowed: set[str], required: set[str]) -> dict[str, Any]:
        """Check a mapping's keys: unknown keys and missing required keys are errors."""
        if not isinstance(data, dict):
            self.error(path, f"expected a mapping, got {show(data)}")
            return {}
        for key in sorted(set(data) - allowed):
            hint = _closest(key, allowed)
            extra = f" (did you mean '{hint}'?)" if hint else f"; expected one of {', '.join(sorted(allowed))}"
            self.error((*path, key), f"unknown key '{key}'{extra}")
        for key in sorted(required - set(data)):
            self.error(path, f"missing required key '{key}'")
        return data

    def get(self, data: dict[str, Any], path: KeyPath, key: str, default: Any = _MISSING) -> Any:
        if key in data:
            return data[key]
        return None if default is _MISSING else default

    def string(self, data: dict[str, Any], path: KeyPath, key: str, default: str | None = None,
               pattern: re.Pattern[str] | None = None, check: Callable[[str], str | None] | None = None,
               secret_slot: str = "") -> str:
        """``secret_slot`` (the punctuation the grammar allows, e.g. "-"): a key beside a secret (a Secret's
        name, an environment variable's name), where a pasted secret would otherwise be echoed: a wrong value
        is described, never shown (:func:`hidden`)."""
        if key not in data:
            return default or ""
        value = data[key]
        where = (*path, key)
        if not isinstance(value, str):
            self.error(where, f"expected a string, got {hidden(value, secret_slot) if secret_slot else show(value)}")
            return default or ""
        if pattern is not None and not pattern.fullmatch(value):
            shown = hidden(value, secret_slot) if secret_slot else \
                show(without_userinfo(value) if pattern is URL else value)  # never a password written in a URL
            self.error(where, f"expected {describe_grammar(pattern)}, got {shown}")
            return default or ""
        if check is not None:
            msg = check(value)
            if msg:
                self.error(where, f"{msg}")
                return default or ""
        return value

    def number(self, data: dict[str, Any], path: KeyPath, key: str, default: float | None = None,
               low: float | None = None, high: float | None = None, integer: bool = False,
               low_open: bool = False) -> float | None:
        if key not in data or data[key] is None:
            return default
        value = data[key]
        where = (*path, key)
        kinds: tuple[type, ...] = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            self.error(where, f"expected {'an integer' if integer else 'a number'}, got {show(value)}")
            return default
        fv = float(value)  # type: ignore[arg-type]  # checked to be int or float just above
        if fv != fv or fv in (float("inf"), float("-inf")):
            self.error(where, f"expected a finite number, got {value!r}")
            return default
        if low is not None and (fv <= low if low_open else fv < low):
            self.error(where, f"expected a number {'>' if low_open else '>='} {low:g}, got {value!r}")
            return default
        if high is not None and fv > high:
            self.error(where, f"expected a number <= {high:g}, got {value!r}")
            return default
        return fv

    def choice(self, data: dict[str, Any], path: KeyPath, key: str, choices: list[str],
               default: str | None = None) -> str:
        if key not in data:
            return default or ""
        value = data[key]
        if not isinstance(value, str) or value not in choices:
            self.error((*path, key), f"expected one of {', '.join(choices)}, got {show(value)}")
            return default or ""
        return value

    def convert(self, data: dict[str, Any], path: KeyPath, key: str, parse: Callable[[Any], T],
                expected: str) -> T | None:
        """Apply ``parse`` (which raises ValueError with the reason) to a value."""
        if key not in data:
            return None
        try:
            return parse(data[key])
        except (ValueError, OverflowError) as exc:
            self.error((*path, key), f"expected {expected}, got {show(data[key])}: {exc}")
            return None


def _closest(key: str, allowed: set[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.75)
    return found[0] if found else None
