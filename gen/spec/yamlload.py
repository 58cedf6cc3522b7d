"""Load YAML with ``yaml.safe_load`` semantics while keeping where every value came from.

The result is plain Python data plus a :class:`Marks` table mapping key paths
(``("signals", 0, "windows", "fast")``) to 1-based ``(line, column)``, so that validation
messages can say ``specs/reco.yaml:14:5``. Duplicate keys are errors (PyYAML silently keeps the
last one). Inputs are bounded: a file larger than :data:`MAX_BYTES` or one that expands to more
than :data:`MAX_NODES` nodes (an alias bomb) is rejected with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gen.errors import Problem

MAX_BYTES = 1_000_000
MAX_NODES = 100_000

KeyPath = tuple[str | int, ...]


def format_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Marks:
    file: str
    table: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def at(self, path: KeyPath) -> tuple[int, int]:
        """Position of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.table:
                return self.table[p]
            p = p[:-1]
        return self.table.get((), (1, 1))

    def problem(self, path: KeyPath, message: str, level: str = "error") -> Problem:
        line, col = self.at(path)
        return Problem(self.file, line, col, format_path(path), message, level)


class _Loader(yaml.SafeLoader):
    pass


class _Builder:
    def __init__(self, loader: _Loader, marks: Marks, problems: list[Problem]) -> None:
        self.loader = loader
        self.marks = marks
        self.problems = problems
        self.nodes = 0

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooBig(f"the document expands to more than {MAX_NODES} nodes (aliases?)")
        self.marks.table.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool) or key is None:
                    line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                    self.problems.append(
                        Problem(self.marks.file, line, col, format_path(path),
                                f"expected a plain key, got {type(key).__name__}")
                    )
                    continue
                skey = key if isinstance(key, str) else str(key)
                child = (*path, skey)
                if skey in out:
                    line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                    self.problems.append(
                        Problem(self.marks.file, line, col, format_path(child),
                                f"duplicate key '{skey}'; it is already set on line "
                                f"{self.marks.at(child)[0]} (YAML would silently keep the last one)")
                    )
                    continue
                self.marks.table[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[skey] = self.build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


class _TooBig(Exception):
    pass


def load_yaml(path: Path, display: str, problems: list[Problem]) -> tuple[Any, Marks]:
    """Parse one YAML document. Problems are appended; returns ``(None, marks)`` when unreadable."""
    marks = Marks(display)
    try:
        size = path.stat().st_size
    except OSError as exc:
        problems.append(Problem(display, 0, 0, "", f"cannot read file: {exc.strerror}"))
        return None, marks
    if size > MAX_BYTES:
        problems.append(Problem(display, 0, 0, "", f"file is {size} bytes; the limit is {MAX_BYTES}"))
        return None, marks
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(display, 0, 0, "", f"cannot read file as UTF-8: {exc}"))
        return None, marks
    return loads_yaml(text, display, problems)


def loads_yaml(text: str, display: str, problems: list[Problem]) -> tuple[Any, Marks]:
    marks = Marks(display)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            problems.append(Problem(display, 1, 1, "", "the file is empty; expected a mapping"))
            return None, marks
        return _Builder(loader, marks, problems).build(node, ()), marks
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problems.append(Problem(display, line, col, "", f"invalid YAML: {exc.problem or exc.context}"))
    except yaml.YAMLError as exc:
        problems.append(Problem(display, 0, 0, "", f"invalid YAML: {exc}"))
    except _TooBig as exc:
        problems.append(Problem(display, 0, 0, "", str(exc)))
    finally:
        loader.dispose()
    return None, marks
