"""Reading input files safely: regular files inside the repository only, never a hang.

Every file driftgate reads (a spec, a baseline, an evidence file, an export, a sidecar, a generated
file it compares with) goes through :func:`read_bytes` or :func:`refusal`:

* a FIFO, socket, device or directory where a file is expected is refused *before* it is opened for
  reading (``O_NONBLOCK``, then ``fstat`` on the open descriptor, so a path swapped in between is
  still refused): a named pipe would otherwise block the read forever;
* a symlink whose target lies outside the repository is refused without reading the target (its
  contents must not reach a message); a dangling symlink is named by the link, not its target;
* files larger than the caller's limit are refused before being read;
* an ``OSError`` becomes one sentence with the system's reason (exit 1, not a traceback).

The messages name the file as the caller displays it (repository-relative), never the bytes.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from driftgate.errors import DriftgateError


class FileRefused(DriftgateError):
    """An input path that is not a readable regular file inside the repository."""


_READS_ONLY = "; driftgate reads only regular files"


def describe(mode: int) -> str:
    """What a non-regular file is, in a few words ("a named pipe (FIFO)")."""
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return what
    return "not a regular file"


def _kind(mode: int) -> str:
    what = describe(mode)
    if stat.S_ISDIR(mode):
        return f"{what}, not a file"
    return what + (_READS_ONLY if what == "not a regular file" else f", not a regular file{_READS_ONLY}")


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside ``root`` (symlinks resolved)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


def refusal(path: Path, root: Path | None = None) -> str | None:
    """Why ``path`` cannot be read as an input file, or None when it is a regular file (inside ``root``)."""
    try:
        link = path.lstat()
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if stat.S_ISLNK(link.st_mode):
        try:
            st = path.stat()
        except FileNotFoundError:
            return "a symlink to a file that does not exist (a dangling link, e.g. an editor's lock file)"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "a symlink loop (the link leads back to itself)"
            return f"cannot read: {exc.strerror or exc}"
        if root is not None and not inside(path, root):
            return "a symlink that leads outside the repository; driftgate reads only files inside it"
    else:
        if root is not None and not inside(path, root):
            return "a path that leads outside the repository (through a symlinked folder); driftgate reads " \
                   "only files inside it"
        st = link
    if not stat.S_ISREG(st.st_mode):
        return _kind(st.st_mode)
    return None


def read_bytes(path: Path, display: str, limit: int, root: Path | None = None, what: str = "file") -> bytes:
    """The bytes of a regular file, or :class:`FileRefused` saying why not (named as ``display``)."""
    reason = refusal(path, root)
    if reason is not None:
        raise FileRefused(f"{display}: {reason}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileRefused(f"{display}: cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped for something else after the check above
            raise FileRefused(f"{display}: {_kind(st.st_mode)}")
        if st.st_size > limit:
            raise FileRefused(f"{display}: the {what} is {st.st_size} bytes; the limit is {limit}")
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:  # grew while being read
                raise FileRefused(f"{display}: the {what} is more than {limit} bytes; the limit is {limit}")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise FileRefused(f"{display}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result] | None:
    """A regular file's bytes (at most ``limit + 1``) and its ``fstat``, or None for anything else: missing,
    a symlink (never followed), a FIFO or device (never opened blocking), a folder, larger than ``limit``.
    For driftgate's own output (generated files, pictures), where anything but a regular file is simply
    not the file it wrote."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        chunks = []
        total = 0
        while total <= limit and (chunk := os.read(fd, max(st.st_size + 1 - total, 1 << 16))):
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)[:limit + 1], st
    except OSError:
        return None
    finally:
        os.close(fd)
