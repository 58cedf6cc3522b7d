"""Load YAML with ``yaml.safe_load`` semantics while keeping where every value came from.

The result is plain Python data plus a :class:`Marks` table mapping key paths
(``("signals", 0, "windows", "fast")``) to 1-based ``(line, column)``, so that validation
messages can say ``specs/reco.yaml:14:5``. Duplicate keys are errors (PyYAML silently keeps the
last one). Inputs are bounded: a file larger than :data:`MAX_BYTES`, one that expands to more
than :data:`MAX_NODES` nodes (an alias bomb) or nests deeper than :data:`MAX_DEPTH` levels (which
would otherwise end in a ``RecursionError`` inside PyYAML's recursive composer) is rejected with a
clear message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from driftgate.errors import Problem, is_invisible, quote
from driftgate.fsio import FileRefused, read_bytes

MAX_BYTES = 1_000_000
MAX_NODES = 100_000
MAX_DEPTH = 100  # a spec is about 5 levels deep; PyYAML's composer recurses per level

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


_PLAIN_COLLECTIONS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Bounded(yaml.composer.Composer):
    """PyYAML's composer with the nesting bounded *before* it recurses: 2000 nested '[' would otherwise
    raise RecursionError (not a YAMLError) from the recursive composer, and the user would see a traceback."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise _TooBig(f"the document nests deeper than {MAX_DEPTH} levels", mark.line + 1, mark.column + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Loader(_Bounded, yaml.SafeLoader):
    pass


try:  # libyaml scans and parses (in C); the composing, the bounds and the marks stay the Python code above
    from yaml._yaml import CParser as _CParser

    class _LibyamlReader(_Bounded, _CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

except ImportError:  # PyYAML without libyaml: the pure-Python loader for everything
    _LibyamlReader = None  # type: ignore[assignment,misc]

# Text libyaml and PyYAML read alike: printable ASCII, newlines and nothing else (no tab, no control
# character, no BOM, no line separator), and no "?" (libyaml takes "{a: b?c}" for a plain scalar,
# PyYAML refuses it). Anything else, and any document libyaml refuses, is read by the pure-Python
# loader, whose messages are the ones users see (tests/test_yamlload_fast.py holds them to it).
_FAST_TEXT = re.compile(r"[\n\x20->@-\x7e]*")


class _Builder:
    def __init__(self, loader: yaml.constructor.SafeConstructor, marks: Marks, problems: list[Problem]) -> None:
        self.loader = loader
        self.marks = marks
        self.problems = problems
        self.nodes = 0

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooBig(f"the document expands to more than {MAX_NODES} nodes (aliases?)")
        self.marks.table.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_COLLECTIONS:
            # Scalars go through SafeLoader's constructors, which refuse unknown tags; collections are
            # built here, so an explicit tag (!!python/object/apply:..., !!set, !custom) is refused here.
            raise yaml.constructor.ConstructorError(
                None, None, f"could not determine a constructor for the tag {node.tag!r}", node.start_mark)
        if isinstance(node, yaml.MappingNode):
            # A merge key (<<: *defaults) brings the keys of another mapping in; the mapping's own keys
            # override them (YAML 1.1 merge semantics); of several merged mappings the first listed wins
            # (PyYAML's flatten_mapping puts them in reverse order, so here the last one seen wins).
            own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
            self.loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            merged: set[str] = set()
            for key_node, value_node in node.value:
                key = self.scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else \
                    self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool) or key is None:
                    line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                    kind = {type(None): "null", list: "a list", dict: "a mapping"}.get(type(key), type(key).__name__)
                    self.problems.append(
                        Problem(self.marks.file, line, col, format_path(path),
                                f"expected a plain key, got {kind}")
                    )
                    continue
                skey = key if isinstance(key, str) else str(key)
                child = (*path, skey)
                if id(key_node) not in own:  # merged in
                    out.pop(skey, None)
                    merged.add(skey)
                elif skey in merged:  # the mapping's own key overrides a merged one
                    merged.discard(skey)
                    del out[skey]
                    self.marks.table.pop(child, None)
                elif skey in out:
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
        return self.scalar(node)

    def scalar(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:
            # An unquoted value that YAML's resolver takes for a timestamp (or a number) but that is not a
            # valid one: 2026-11-26T12:00:00+99:00 (offset out of range), 2026-02-30 (no such day).
            kind = node.tag.rsplit(":", 1)[-1] if isinstance(node.tag, str) else "value"
            reason = "a time zone offset is at most 23:59 either way" if "offset must be" in str(exc) else str(exc)
            raise yaml.constructor.ConstructorError(
                None, None, f"{quote(str(node.value))} reads as a YAML {kind} but is not a valid one ({reason}); "
                            f"correct it, or quote it to make it a string", node.start_mark) from None


def _invisible_near(text: str, line: int) -> str:
    """Name an invisible character on the failing line or the one before (a no-break space in the indentation,
    a zero-width space): PyYAML's message alone does not show it, and the editor does not either."""
    import unicodedata

    lines = text.split("\n")
    for n in (line, line - 1):
        if not 1 <= n <= len(lines):
            continue
        for c, ch in enumerate(lines[n - 1], start=1):
            if is_invisible(ch):
                return (f" (line {n}, column {c} holds the invisible character U+{ord(ch):04X} "
                        f"{unicodedata.name(ch, 'unnamed')}; YAML indents and separates with plain spaces only)")
    return ""


class _TooBig(Exception):
    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.line, self.col = line, col


def load_yaml(path: Path, display: str, problems: list[Problem], root: Path | None = None) -> tuple[Any, Marks]:
    """Parse one YAML document. Problems are appended; returns ``(None, marks)`` when unreadable.

    With ``root``, a path leading outside it (a symlink) is refused without being read; a FIFO, a
    directory or a device is refused without blocking (:mod:`driftgate.fsio`).
    """
    marks = Marks(display)
    try:
        raw = read_bytes(path, display, MAX_BYTES, root)
    except FileRefused as exc:
        problems.append(Problem(display, 0, 0, "", str(exc).removeprefix(f"{display}: ")))
        return None, marks
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # say where, so the byte can be found
        before = raw[:exc.start]
        line, col = before.count(b"\n") + 1, exc.start - (before.rfind(b"\n") + 1) + 1
        problems.append(Problem(display, line, col, "", f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be "
                                                        f"decoded ({exc.reason}); save the file as UTF-8"))
        return None, marks
    return loads_yaml(text, display, problems)


def loads_yaml(text: str, display: str, problems: list[Problem]) -> tuple[Any, Marks]:
    if _LibyamlReader is not None and _FAST_TEXT.fullmatch(text):
        fast = _fast(text, display)
        if fast is not None:
            return fast
    marks = Marks(display)
    loader = None
    try:
        loader = _Loader(text)  # the reader checks every character here (NUL, other non-printables)
        node = loader.get_single_node()
        if node is None:
            empty = "the file is empty" if not text.strip() else "the file holds no YAML document (only comments?)"
            problems.append(Problem(display, 1, 1, "", f"{empty}; expected a mapping"))
            return None, marks
        return _Builder(loader, marks, problems).build(node, ()), marks
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        what = exc.problem or exc.context
        if exc.problem and exc.context and exc.context.startswith("while"):
            # e.g. an unclosed quote: the problem is at the end of the file, so say where it started
            start = exc.context_mark
            where = f" (line {start.line + 1}, column {start.column + 1})" if start is not None else ""
            what = f"{exc.context}{where}: {exc.problem}"
        elif exc.problem and exc.context:
            what = f"{exc.context}, {exc.problem}"
        problems.append(Problem(display, line, col, "", f"invalid YAML: {what}{_invisible_near(text, line)}"))
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: say where, in one line
        before = text[:exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problems.append(Problem(display, line, col, "", f"invalid YAML: unacceptable character #x{code:04x}: "
                                                        f"{exc.reason}"))
    except yaml.YAMLError as exc:
        problems.append(Problem(display, 0, 0, "", f"invalid YAML: {exc}"))
    except _TooBig as exc:
        problems.append(Problem(display, exc.line, exc.col, "", str(exc)))
    finally:
        if loader is not None:
            loader.dispose()
    return None, marks



def _fast(text: str, display: str) -> tuple[Any, Marks] | None:
    """``text`` read with libyaml's scanner and parser, or None when that needs the full loader: any
    error, any problem (a duplicate key, a key that is not plain) or any bound exceeded, so that every
    message comes from one place."""
    marks = Marks(display)
    found: list[Problem] = []
    loader = _LibyamlReader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        data = _Builder(loader, marks, found).build(node, ())
    except Exception:  # whatever it is, the full loader reports it
        return None
    finally:
        loader.dispose()
    return None if found else (data, marks)
