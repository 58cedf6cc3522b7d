"""Render a fleet: every model in parallel, and only the models whose inputs changed.

**What a model's output depends on**, and nothing else (render is pure): its spec file, its baseline
and evidence files, driftgate's own code and templates, and the CRD schemas it is validated against.
The *key* of a model is a SHA-256 over exactly those bytes (the code as every ``.py`` of the package
and every template, so a driftgate upgrade or an edited template changes every key).

**The cache** (``.driftgate/render-cache.json`` under the repository root; local, never committed:
``.driftgate/`` is in ``.gitignore``) maps each spec file to its model's key and the SHA-256 of every
file the render produced for it (plus what the shared Alertmanager configuration needs of it). A
model is reused only when its key is unchanged **and** every file it produced is on disk with those
bytes; anything else (a spec, baseline or template edit, a generated file edited by hand, deleted or
missing) renders the model again, and ``check`` then reports the difference as before. Files in
``generated/`` that no model produces are orphans, found by the same full comparison of the tree as
without a cache. A fresh clone has no cache and renders everything; so does ``--no-cache``. The
cache is only ever written after a complete, validated render, and a cache that cannot be read is
ignored.

**Parallelism**: the models to render are spread over worker processes (``jobs``: the CPUs this
process may use, ``$DRIFTGATE_JOBS`` to override; one process below four models); each renders,
resolves its pictures and validates its files, and the results are merged in model order, so the
output does not depend on the number of workers.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from driftgate.errors import BaselineError, Problem, RenderError, SpecError
from driftgate.model import ModelSpec, SecretRef
from driftgate.validate import crd

CACHE_REL = ".driftgate/render-cache.json"
CACHE_FORMAT = 1
ENV_JOBS = "DRIFTGATE_JOBS"
PARALLEL_FROM = 4  # fewer models: one process (a worker pool costs more than it saves)

T = TypeVar("T")
R = TypeVar("R")


def _package_files() -> list[Path]:
    package = Path(__file__).resolve().parents[1]
    try:
        from importlib import resources

        templates = Path(str(resources.files("driftgate.templates")))
    except (ModuleNotFoundError, TypeError):
        templates = package.parent / "templates"
    if not templates.is_dir():
        templates = package.parent / "templates"
    return sorted([*package.rglob("*.py"), *templates.rglob("*.j2")])


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of driftgate's code and templates, as this process runs them."""
    digest = hashlib.sha256(b"driftgate-render\0")
    package = Path(__file__).resolve().parents[1]
    for path in _package_files():
        try:
            rel = path.relative_to(package.parent).as_posix()
        except ValueError:
            rel = path.name
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def crd_identity(source: crd.Source) -> str:
    """What the render was validated against: the CRD files' names and bytes (or that none were given)."""
    if source.directory is None:
        return "none"
    digest = hashlib.sha256(b"crds\0")
    for path in sorted(p for p in source.directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(source.directory).as_posix().encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


_READ_LIMIT = 1 << 30
Signature = tuple[int, int, int]  # (inode, mtime_ns, size) of a file as it was read


def _read_signed(path: Path) -> tuple[bytes, Signature] | None:
    """A generated file's bytes and signature, or None for anything but a regular file (missing, a
    symlink, a FIFO, a device, a folder: never followed nor opened blocking); its model is then rendered
    again and the write reports or refuses the path as it does without a cache."""
    from driftgate import fsio

    found = fsio.read_regular(path, _READ_LIMIT)
    if found is None or len(found[0]) > _READ_LIMIT:
        return None
    data, st = found
    return data, (st.st_ino, st.st_mtime_ns, len(data))


def _read(path: Path) -> bytes | None:
    """An input's bytes (a spec, baseline or evidence file: symlinks inside the repository followed, as
    the loaders do), or None when the loaders would refuse it."""
    from driftgate import fsio

    try:
        return fsio.read_bytes(path, str(path), _READ_LIMIT)
    except (fsio.FileRefused, OSError):
        return None


def model_key(root: Path, spec_rel: str, name: str, code: str, crds: str, inputs: Sequence[str] = ()) -> str:
    """What a model's render depends on: the code, the schemas, its spec, baseline and evidence, and the
    other files its spec reads (``inputs``: ``history.exclude_file``, whose spans the baseline must match)."""
    digest = hashlib.sha256(f"{code}\0{crds}\0{spec_rel}\0{name}\0{len(inputs)}\0".encode())
    for rel in (spec_rel, f"baselines/{name}.yaml", f"baselines/{name}.evidence.json", *inputs):
        data = _read(root / rel)
        digest.update(b"-" if data is None else b"+" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def sha(content: str | bytes) -> str:
    return hashlib.sha256(content.encode() if isinstance(content, str) else content).hexdigest()


# ------------------------------------------------------------------------------------------- workers


def jobs() -> int:
    env = os.environ.get(ENV_JOBS, "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def parallel_map(fn: Callable[[T], R], items: Sequence[T], workers: int | None = None,
                 least: int = PARALLEL_FROM) -> list[R]:
    """``[fn(i) for i in items]``, over worker processes when there are at least ``least`` items; order kept."""
    workers = jobs() if workers is None else workers
    if workers <= 1 or len(items) < max(2, least):
        return [fn(i) for i in items]
    methods = multiprocessing.get_all_start_methods()
    fork = "fork" in methods
    # Forked workers share what the parent has loaded (modules, compiled templates, CRD schemas and their
    # validators, ~2 s of start-up each): the parent does the first item itself before the pool forks.
    first = [fn(items[0])] if fork else []
    rest = items[len(first):]
    context = multiprocessing.get_context("fork" if fork else "spawn")
    chunk = max(1, len(rest) // (workers * 8))
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(rest)), mp_context=context) as pool:
        return first + list(pool.map(fn, rest, chunksize=chunk))


@dataclass
class ModelResult:
    """One model's render, as a worker returns it (picklable: no exceptions, no Jinja objects)."""

    name: str
    spec_path: str
    files: dict[str, Any] = field(default_factory=dict)  # rel -> str | bytes
    undrawn: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # baseline problems (BaselineError)
    hint: str = ""
    render_error: tuple[str, str] | None = None  # (message, hint) of a RenderError
    receivers: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # other files the spec reads (history.exclude_file)
    unvalidated: list[str] = field(default_factory=list)  # kinds no schema declared
    load_warnings: list[Problem] = field(default_factory=list)  # the spec's own (set by the caller)


def _plain(value: Any) -> Any:
    """Receivers as JSON (Secret references as {name, key}: the templates read them by attribute)."""
    return {"name": value.name, "key": value.key} if isinstance(value, SecretRef) else value


def render_one(root: Path, source: crd.Source, draw: bool, spec: ModelSpec) -> ModelResult:
    from driftgate import pipeline
    from driftgate.render import plots, targets
    from driftgate.render.targets import receivers, render_model
    from driftgate.render.verify import verify

    out = ModelResult(spec.name, spec.spec_path, sources=[spec.spec_path, f"baselines/{spec.name}.yaml"],
                      inputs=[spec.exclude_file] if spec.exclude_file else [])
    out.receivers = {k: _plain(v) for k, v in receivers(spec).items()}
    try:
        ctx = pipeline.model_context(root, spec, out.warnings)
    except BaselineError as exc:
        out.problems, out.hint = list(exc.problems), exc.hint
        return out
    try:
        env = _environment(targets.environment)  # type: ignore[attr-defined]  # (looked up here: tests patch it)
        files, out.undrawn = plots.resolve(root, render_model(env, ctx), draw=draw)
        kinds: set[str] = set()
        verify(files, source, out.warnings, parse_hcl=False, unvalidated_out=kinds, emitted=targets.emitted)
        out.unvalidated = sorted(kinds)
    except RenderError as exc:
        out.render_error = (str(exc), exc.hint)
        return out
    out.files = files
    return out


def _load_one(root: Path, path: Path) -> tuple[ModelSpec | None, list[Problem]]:
    """One spec file, loaded (in a worker: a fleet's specs load on every core) with its problems."""
    from driftgate.spec.load import load_spec

    found: list[Problem] = []
    return load_spec(root, path, found, check_exports=False), found


_ENV: dict[Callable[[], Any], Any] = {}


def _environment(make: Callable[[], Any]) -> Any:
    """One Jinja environment per factory and process (its compiled templates are reused across models)."""
    if make not in _ENV:
        _ENV[make] = make()
    return _ENV[make]


# --------------------------------------------------------------------------------------------- cache


def load_cache(root: Path, code: str, crds: str) -> dict[str, Any]:
    """The cache written by the same code against the same schemas (``{}`` otherwise, or unreadable)."""
    try:
        data = json.loads((root / CACHE_REL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or data.get("code") != code \
            or data.get("crds") != crds or not isinstance(data.get("models"), dict):
        return {}
    return data


def save_cache(root: Path, code: str, crds: str, models: dict[str, Any], shared: dict[str, Any],
               terraform_parsed: bool = False) -> None:
    from driftgate.render.output import atomic_write

    path = root / CACHE_REL
    text = json.dumps({"format": CACHE_FORMAT, "code": code, "crds": crds, "models": models, "shared": shared,
                       "terraform_parsed": terraform_parsed}, sort_keys=True, separators=(",", ":"))
    with contextlib.suppress(OSError):  # a read-only checkout: no cache, no failure
        path.parent.mkdir(parents=True, exist_ok=True)
        gitignore = path.parent / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("*\n", encoding="utf-8")
        atomic_write(path, text + "\n")


def _problem(data: dict[str, Any]) -> Problem:
    return Problem(str(data["file"]), int(data["line"]), int(data["col"]), str(data["path"]), str(data["message"]),
                   str(data["level"]))


def _problem_json(p: Problem) -> dict[str, Any]:
    return {"file": p.file, "line": p.line, "col": p.col, "path": p.path, "message": p.message, "level": p.level}


@dataclass
class Tree:
    files: dict[str, Any]  # every file the render produces (reused models: the bytes on disk)
    undrawn: list[str]
    rendered: list[str]  # models rendered this time (the others were reused)
    cache: dict[str, Any] | None = None  # for save_cache, after the tree is written
    read: dict[str, Signature] = field(default_factory=dict)  # files as read from disk (output.write's known)


def save(root: Path, tree: Tree) -> None:
    """Remember ``tree`` (rendered and written) for the next render or check on this machine."""
    if tree.cache is not None:
        save_cache(root, tree.cache["code"], tree.cache["crds"], tree.cache["models"], tree.cache["shared"],
                   tree.cache["terraform_parsed"])


def render_tree(root: Path, spec_dir: Path, source: crd.Source, warnings: list[Problem] | None, draw: bool,
                use_cache: bool = True, workers: int | None = None) -> Tree:
    """The whole generated tree, validated (see the module docstring)."""
    from driftgate.render.verify import parse_terraform, unvalidated_warning, verify
    from driftgate.spec.load import claim_name, listed_spec_files, spec_display

    problems: list[Problem] = []
    paths = listed_spec_files(root, spec_dir, problems)
    listing_warnings = [p for p in problems if p.level != "error"]
    code, crds = code_fingerprint(), crd_identity(source)
    data = load_cache(root, code, crds) if use_cache else {}
    cache: dict[str, Any] = data.get("models", {})
    reused: dict[str, dict[str, Any]] = {}
    files: dict[str, Any] = {}
    read: dict[str, Signature] = {}  # files reused as read from disk: what they were when read
    todo: list[Path] = []

    def current(path: Path) -> tuple[dict[str, Any], dict[str, tuple[bytes, Signature]]] | None:
        """The cache entry of ``path``'s model and its files as read, when its inputs and every file it
        wrote are what the entry says (the file's bytes hashed, not its size or mtime), else None."""
        rel = spec_display(root, path)
        entry = cache.get(rel)
        if not entry or model_key(root, rel, entry["name"], code, crds, entry.get("inputs", [])) != entry["key"]:
            return None
        on_disk: dict[str, tuple[bytes, Signature]] = {}
        for f, digest in entry["files"].items():
            signed = _read_signed(root / f)
            if signed is None or sha(signed[0]) != digest:
                return None
            on_disk[f] = signed
        return entry, on_disk

    # Reading and hashing release the GIL: the files of a large tree are checked on every core.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs())) as pool:
        checked = list(pool.map(current, paths, chunksize=16)) if cache else [None] * len(paths)
    for path, hit in zip(paths, checked, strict=True):
        if hit is None:
            todo.append(path)
            continue
        entry, on_disk = hit
        reused[spec_display(root, path)] = entry
        for f, (content, signature) in on_disk.items():
            files[f], read[f] = content, signature
    specs: list[ModelSpec] = []
    load_warnings: dict[str, list[Problem]] = {}
    for path, (spec, found) in zip(todo, parallel_map(functools.partial(_load_one, root), todo, workers),
                                   strict=True):  # in spec file order, as serially
        problems.extend(found)
        load_warnings[spec_display(root, path)] = [p for p in found if p.level != "error"]
        if spec is not None:
            specs.append(spec)
    seen: dict[str, str] = {entry["name"]: rel for rel, entry in reused.items()}
    for spec in specs:
        claim_name(spec, seen, problems)
    if any(p.level == "error" for p in problems):
        raise SpecError(problems)
    results = parallel_map(functools.partial(render_one, root, source, draw), specs, workers)
    for r in results:
        r.load_warnings = load_warnings.get(r.spec_path, [])
    failed = [p for r in results for p in r.problems]
    if failed:
        raise BaselineError(failed, hint=next((r.hint for r in results if r.hint), ""))
    for r in results:
        if r.render_error is not None:
            raise RenderError(r.render_error[0], hint=r.render_error[1])
    undrawn: list[str] = []
    by_spec: dict[str, ModelResult] = {r.spec_path: r for r in results}
    spec_warnings: list[Problem] = list(listing_warnings)  # the specs' warnings first, as without a cache
    model_warnings: list[Problem] = []
    unvalidated: set[str] = set()
    for path in paths:
        rel = spec_display(root, path)
        if rel in reused:
            spec_warnings.extend(_problem(w) for w in reused[rel]["load_warnings"])
            model_warnings.extend(_problem(w) for w in reused[rel]["warnings"])
            unvalidated.update(reused[rel]["unvalidated"])
        elif rel in by_spec:
            r = by_spec[rel]
            files.update(r.files)
            undrawn.extend(r.undrawn)
            spec_warnings.extend(r.load_warnings)
            model_warnings.extend(r.warnings)
            unvalidated.update(r.unvalidated)
    # A broken template shows in any model's Terraform: parse the first rendered one with python-hcl2,
    # once per driftgate code (the cache remembers it: the same templates parsed before).
    parsed = data.get("terraform_parsed") is True
    if results and not parsed:
        first = min(results, key=lambda r: r.name)
        parse_terraform({rel: t for rel, t in first.files.items() if rel.endswith(".tf")})
        parsed = True
    # The shared Alertmanager configuration, from every model's receivers (in spec file order).
    shared_models = []
    for path in paths:
        rel = spec_display(root, path)
        if rel in reused:
            shared_models.append((reused[rel]["receivers"], reused[rel]["sources"]))
        elif rel in by_spec:
            shared_models.append((by_spec[rel].receivers, by_spec[rel].sources))
    shared_key = sha(json.dumps(shared_models, sort_keys=True))
    cached_shared = data.get("shared") or {}
    shared: dict[str, Any] = {}
    if cached_shared.get("key") == shared_key and isinstance(cached_shared.get("files"), dict):
        signed_shared = {f: _read_signed(root / f) for f in cached_shared["files"]}
        shared_disk = {f: None if v is None else v[0] for f, v in signed_shared.items()}
        if all(d is not None and sha(d) == cached_shared["files"][f] for f, d in shared_disk.items()):
            shared = shared_disk  # the same receivers as last time, and the file untouched
            read.update({f: v[1] for f, v in signed_shared.items() if v is not None})
    if not shared:
        from driftgate.render import targets  # (scipy, Jinja: imported only when something is rendered)

        env = _environment(targets.environment)  # type: ignore[attr-defined]
        rendered_shared = targets.alertmanager_shared(env, shared_models)
        shared = {rel: text for rel, text in rendered_shared.items() if isinstance(text, (str, bytes))}
        verify(shared, source, None, parse_hcl=False, unvalidated_out=unvalidated)
    files.update(shared)
    if warnings is not None:
        warning = unvalidated_warning(source, unvalidated)
        warnings.extend(_dedupe([*spec_warnings, *model_warnings, *([warning] if warning else [])]))
    cache_out: dict[str, Any] | None = None
    if use_cache:  # what the caller saves (save_cache) once the tree is written: render, not check
        models = {rel: entry for rel, entry in reused.items()}
        for r in results:
            if r.undrawn:  # a picture that could not be drawn: nothing to remember
                continue
            models[r.spec_path] = {
                "name": r.name, "key": model_key(root, r.spec_path, r.name, code, crds, r.inputs), "inputs": r.inputs,
                "files": {rel: sha(content) for rel, content in sorted(r.files.items())},
                "warnings": [_problem_json(w) for w in r.warnings],
                "load_warnings": [_problem_json(w) for w in r.load_warnings], "unvalidated": r.unvalidated,
                "receivers": r.receivers, "sources": r.sources}
        cache_out = {"code": code, "crds": crds, "models": models, "terraform_parsed": parsed,
                     "shared": {"key": shared_key, "files": {rel: sha(content) for rel, content in shared.items()}}}
    return Tree(dict(sorted(files.items())), sorted(undrawn), sorted(r.name for r in results), cache_out, read)


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    out: list[Problem] = []
    seen: set[Problem] = set()
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out
