"""Check a user's own Rollout manifests against the criteria driftgate generated for them.

``driftgate check --rollouts PATH`` reads Kubernetes manifests (files or folders of ``.yaml``/``.yml``,
``kustomize build`` or ``helm template`` output, ``-`` for standard input) and, for every model spec
whose ``rollout`` is found there, requires what the generated Component
(``generated/argo/<model>-rollout/kustomization.yaml``) would have set:

* a canary strategy (blue-green has no steps for the freeze gate);
* ``spec.strategy.canary.analysis`` (background analysis) referencing ``<model>-rollback-criteria``
  with the ``canary-hash`` argument from ``podTemplateHashValue: Latest``, starting at the first step;
* the freeze gate ``<model>-freeze-gate`` as the first step;
* ``spec.rollbackWindow.revisions`` >= 1, so that ``kubectl argo rollouts undo`` of a bad release is
  promoted at once instead of running the steps again (where the freeze gate would block it);
* a step analysis or pause is not required beyond that, but the background analysis must not be
  limited to a later ``startingStep`` (the canary would run unguarded until then).

Each problem names the file, the document, the Rollout and the field. A spec whose Rollout is in none
of the given manifests is a problem too: its criteria guard nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftgate.errors import Problem
from driftgate.model import ModelSpec
from driftgate.validate import crd

CANARY_ARG = "canary-hash"
_SUFFIXES = (".yaml", ".yml", ".json")
_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Found:
    source: str
    index: int
    obj: dict[str, Any]


def _files(paths: Iterable[str]) -> Iterator[tuple[str, str | None]]:
    """``(name, text)`` of every manifest file under ``paths``; ``None`` for a path that is not there."""
    for raw in paths:
        if raw == "-":
            yield "<stdin>", sys.stdin.read()
            continue
        path = Path(raw)
        files = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file()) if path.is_dir() \
            else [path]
        for f in files:
            if not f.is_file():
                yield str(f), None
                continue
            if f.stat().st_size > _MAX_BYTES:
                continue
            yield str(f), f.read_text(encoding="utf-8", errors="replace")


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object of a manifest file (an item of a ``kind: List`` counts as its own)."""

    source: str
    index: int  # the YAML document
    line: int  # 1-based line the document starts on (0: unknown)
    obj: dict[str, Any]


def _document_lines(text: str) -> list[int]:
    starts = [1]
    for n, line in enumerate(text.splitlines(), start=1):
        if line.startswith("---") and n > 1:
            starts.append(n + 1)
    return starts


def manifests(paths: Iterable[str]) -> tuple[list[Manifest], list[Problem]]:
    """Every object with a ``kind`` under ``paths``, and the problems reading them."""
    out: list[Manifest] = []
    problems: list[Problem] = []
    for source, text in _files(paths):
        if text is None:
            problems.append(Problem(source, 0, 0, "", "no such file or directory"))
            continue
        docs, parse = crd.parse_documents(text, source)
        problems += [Problem(source, 0, 0, "", p) for p in parse]
        starts = _document_lines(text)
        for index, doc in docs:
            items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
            for obj in items or []:
                if isinstance(obj, dict) and isinstance(obj.get("kind"), str):
                    out.append(Manifest(source, index, starts[index] if index < len(starts) else 0, obj))
    return out, problems


def is_rollout(obj: dict[str, Any]) -> bool:
    return obj.get("kind") == "Rollout" and str(obj.get("apiVersion", "")).startswith("argoproj.io/")


def rollouts(paths: Iterable[str]) -> tuple[list[Found], list[Problem]]:
    objs, problems = manifests(paths)
    return [Found(o.source, o.index, o.obj) for o in objs if is_rollout(o.obj)], problems


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _names(templates: Any) -> list[str]:
    if not isinstance(templates, list):
        return []
    return [str(t.get("templateName")) for t in templates if isinstance(t, dict)]


def check_one(spec: ModelSpec, item: Found) -> list[Problem]:
    criteria, gate = f"{spec.name}-rollback-criteria", f"{spec.name}-freeze-gate"
    where = f"document {item.index}: Rollout {spec.namespace}/{spec.rollout}"
    out: list[str] = []
    canary = _get(item.obj, "spec", "strategy", "canary")
    if not isinstance(canary, dict):
        return [Problem(item.source, 0, 0, f"{where}: spec.strategy.canary",
                        "missing: driftgate's criteria need a canary strategy (steps for the freeze gate, a "
                        "background analysis); add generated/argo/" f"{spec.name}-rollout as a kustomize component")]
    analysis = canary.get("analysis")
    if criteria not in _names(_get(analysis, "templates")):
        out.append(f"spec.strategy.canary.analysis.templates: does not reference {criteria}: nothing rolls the "
                   "canary back")
    else:
        args = analysis.get("args") if isinstance(analysis, dict) else None
        arg = next((a for a in args or [] if isinstance(a, dict) and a.get("name") == CANARY_ARG), None)
        if arg is None:
            out.append(f"spec.strategy.canary.analysis.args: no '{CANARY_ARG}' argument: every query matches nothing")
        elif _get(arg, "valueFrom") != spec.prometheus.version_value_from:
            want = spec.prometheus.version_value_from
            how = ("the canary's pod-template hash" if not spec.prometheus.version_pod_label else
                   f"the canary's pod-template label '{spec.prometheus.version_pod_label}'")
            out.append(f"spec.strategy.canary.analysis.args[{CANARY_ARG}]: expected valueFrom: {json.dumps(want)} "
                       f"({how}, the value of {spec.prometheus.version_label} on the scraped series; "
                       f"prometheus.version_from in {spec.spec_path})")
        start = analysis.get("startingStep") if isinstance(analysis, dict) else None
        if isinstance(start, int) and start > 0:
            out.append(f"spec.strategy.canary.analysis.startingStep: {start}: the steps before it run unguarded; "
                       "remove it")
    window = _get(item.obj, "spec", "rollbackWindow", "revisions")
    if not isinstance(window, int) or window < 1:
        out.append("spec.rollbackWindow.revisions: missing: an undo after a bad release would run the steps again, "
                   "the freeze gate first, and be blocked by the freeze it set; set rollbackWindow: {revisions: 2}")
    steps = canary.get("steps")
    first = steps[0] if isinstance(steps, list) and steps else None
    if gate not in _names(_get(first, "analysis", "templates")):
        out.append(f"spec.strategy.canary.steps[0]: expected the freeze gate ({gate}) as the first step: a frozen "
                   "model would re-roll")
    return [Problem(item.source, 0, 0, f"{where}: {msg.split(': ', 1)[0]}", msg.split(": ", 1)[1]) for msg in out]


def check(specs: Iterable[ModelSpec], paths: Iterable[str]) -> list[Problem]:
    """Every problem with the Rollouts in ``paths`` for ``specs`` (empty when all are wired)."""
    found, problems = rollouts(paths)
    for spec in specs:
        mine = [f for f in found if _get(f.obj, "metadata", "name") == spec.rollout
                and _get(f.obj, "metadata", "namespace") in (None, spec.namespace)]
        if not mine:
            problems.append(Problem(spec.spec_path, 0, 0, "rollout",
                                    f"no Rollout {spec.namespace}/{spec.rollout} in the given manifests: the "
                                    "criteria of this model guard nothing there"))
        for item in mine:
            problems += check_one(spec, item)
    return problems
