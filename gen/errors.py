"""One exception root, one handler.

Every error a user can cause is a :class:`DriftgateError`; the CLI prints it and exits 1.
Anything else that escapes is a bug in driftgate: the CLI prints the traceback and exits 3.

Errors carry *where* (file, line, column, key path or series) and *what* (expected vs found),
formatted the way yamllint does: ``specs/reco.yaml:14:5: error: signals[0].windows.fast: expected ...``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_STALE = 1
EXIT_INTERNAL = 3


# Characters a reader cannot see: format characters (zero-width space, joiners, bidirectional overrides),
# separators other than the plain space (no-break space, line/paragraph separators), private-use and
# unassigned code points. Messages also write controls and surrogates as code points.
_INVISIBLE = frozenset({"Cf", "Zl", "Zp", "Co", "Cn"})


def is_invisible(ch: str) -> bool:
    """Whether ``ch`` is printable but cannot be seen (or told from a plain space) in a file or a message."""
    category = unicodedata.category(ch)
    return category in _INVISIBLE or (category == "Zs" and ch != " ")


def code_point(ch: str) -> str:
    return f"<U+{ord(ch):04X}>"


def visible(text: str, ascii_only: bool = False) -> str:
    """``text`` with every invisible character written as ``<U+XXXX>`` (and, with ``ascii_only``, every
    non-ASCII one: a Cyrillic 'е' in a name looks like a Latin 'e'). Newlines stay unless ``ascii_only``."""
    out = []
    for ch in text:
        if " " <= ch <= "~" or (ch == "\n" and not ascii_only):
            out.append(ch)
        elif ascii_only or ch == "\t" or is_invisible(ch) or unicodedata.category(ch) in ("Cc", "Cs"):
            out.append(code_point(ch))
        else:
            out.append(ch)
    return "".join(out)


def quote(value: str) -> str:
    """A string as a message shows it: in single quotes, every non-ASCII or invisible character as <U+XXXX>,
    so that look-alike and invisible characters can be found in the file."""
    body = value.replace("\\", "\\\\").replace("'", "\\'")
    return "'" + visible(body, ascii_only=True) + "'"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one input, located as precisely as the input allows."""

    file: str
    line: int  # 1-based; 0 when unknown
    col: int  # 1-based; 0 when unknown
    path: str  # key path such as ``signals[0].windows.fast`` or a series description
    message: str
    level: str = "error"

    def format(self) -> str:
        where = visible(self.file, ascii_only=True)
        if self.line:
            where += f":{self.line}:{self.col or 1}"
        what = f"{self.path}: {self.message}" if self.path else self.message
        return f"{where}: {self.level}: {visible(what, ascii_only=False).replace(chr(10), ' ')}"

    def format_github(self) -> str:
        kind = "error" if self.level == "error" else "warning"
        loc = f"file={github_property(self.file)}"
        if self.line:
            loc += f",line={self.line},col={self.col or 1}"
        msg = f"{self.path}: {self.message}" if self.path else self.message
        return f"::{kind} {loc}::{github_message(msg)}"


def github_message(text: str) -> str:
    """The data of a GitHub Actions workflow command (``::error ...::DATA``), escaped as the runner reads it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """A property value of a workflow command (``file=...``): also ':' and ',' escaped, so that a file name
    cannot end the property list or start a second command."""
    return github_message(text).replace(":", "%3A").replace(",", "%2C")


class DriftgateError(Exception):
    """Root of every error a user can cause. ``str()`` is the full, user-facing message."""

    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

    def render(self) -> str:
        text = str(self)
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class ProblemsError(DriftgateError):
    """Several problems, collected before failing once."""

    def __init__(self, problems: list[Problem], hint: str = "") -> None:
        self.problems = sorted(set(problems))
        errors = [p for p in self.problems if p.level == "error"]
        head = f"{len(errors)} problem(s) found; nothing was written."
        super().__init__("\n".join([head, *(p.format() for p in self.problems)]), hint)


class SpecError(ProblemsError):
    """A model spec is invalid."""


class ExportError(DriftgateError):
    """An export file cannot be read or holds data that would give a wrong number."""


class FitError(DriftgateError):
    """The history cannot support a fit (too short, empty, degenerate)."""


class BaselineError(ProblemsError):
    """A baseline file is missing, malformed or does not match its spec."""


class RenderError(DriftgateError):
    """Rendered output failed its own validation; nothing was written."""


class OutputError(DriftgateError):
    """Writing the generated tree would destroy something a person wrote."""


class UsageError(DriftgateError):
    """A command-line option or environment variable names something unusable (exit 1)."""
