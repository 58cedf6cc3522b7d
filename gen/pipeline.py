"""The pipeline as library functions: fit, render, gen, check. The CLI only calls these.

Nothing here prints or exits; every function returns what it did or raises a DriftgateError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from driftgate import baseline as bl
from driftgate.errors import BaselineError, Problem, UsageError
from driftgate.fit import evidence as ev
from driftgate.fit.run import fit_model_full, input_hash
from driftgate.model import ModelSpec
from driftgate.render import output, plots
from driftgate.render.context import ModelContext, build, check_baseline
from driftgate.render.env import header
from driftgate.render.targets import render_all
from driftgate.render.verify import verify
from driftgate.spec.load import load_specs
from driftgate.validate import crd

BASELINES = "baselines"


@dataclass(frozen=True)
class FitOutcome:
    model: str
    path: str
    refitted: bool
    provisional: bool


def baseline_path(spec: ModelSpec) -> str:
    return f"{BASELINES}/{spec.name}.yaml"


def evidence_path(spec: ModelSpec) -> str:
    return f"{BASELINES}/{spec.name}.evidence.json"


def fit(root: Path, spec_dir: Path, only: str | None = None, force: bool = False,
        warnings: list[Problem] | None = None) -> list[FitOutcome]:
    specs = load_specs(root, spec_dir, only, check_exports=True, warnings=warnings)
    outcomes = []
    texts: dict[str, str | bytes] = {}
    for spec in specs:
        rel = baseline_path(spec)
        path = root / rel
        if not force and path.is_file():
            try:
                old = bl.load(path, rel, root=root)
            except BaselineError:
                old = None
            if old is not None and old.input_hash == input_hash(root, spec):
                outcomes.append(FitOutcome(spec.name, rel, False, old.provisional))
                continue
        fitted, evidence = fit_model_full(root, spec)
        texts[rel] = bl.dumps(fitted, header([spec.spec_path, *spec.exports]).replace(
            "run 'make gen'", "run 'make gen' to refit"))
        texts[evidence_path(spec)] = ev.dumps(evidence)
        outcomes.append(FitOutcome(spec.name, rel, True, fitted.provisional))
    output.write(root, texts, prune=False)
    return outcomes


def contexts(root: Path, spec_dir: Path, only: str | None = None,
             warnings: list[Problem] | None = None, any_fit_version: bool = False) -> list[ModelContext]:
    """The render context of every model (``any_fit_version``: read baselines of an older driftgate,
    for ``driftgate review`` of a BASE that predates an upgrade; see :func:`driftgate.baseline.load`)."""
    specs = load_specs(root, spec_dir, only, check_exports=False, warnings=warnings)
    out, problems, hints = [], [], []
    for spec in specs:
        rel = baseline_path(spec)
        try:
            base = bl.load(root / rel, rel, any_fit_version, root)
            check_baseline(spec, base, rel)
        except BaselineError as exc:
            problems.extend(exc.problems)
            hints.append(exc.hint)  # e.g. "refit with 'driftgate fit --force'" for a malformed file
            continue
        if base.provisional and warnings is not None:
            warnings.append(Problem(rel, 0, 0, "", f"provisional: {base.history_days:.1f} days of history, the spec "
                                                   f"asks for {base.minimum_days:g}; every signal routes to manual "
                                                   f"rollback until a refit on enough history", "warning"))
        try:
            evidence = ev.load(root / evidence_path(spec), evidence_path(spec), root, base)
        except BaselineError as exc:
            problems.extend(exc.problems)
            continue
        if evidence is None and warnings is not None:
            warnings.append(Problem(evidence_path(spec), 0, 0, "", "no evidence file: the plan has no pictures; "
                                    "run 'driftgate fit --force'", "warning"))
        out.append(build(spec, base, evidence))
    if problems:
        raise BaselineError(list[Problem](problems), hint=next((h for h in hints if h), ""))
    return out


def crd_source(root: Path, crds: Path | None) -> crd.Source:
    """The CRD schemas to validate against (``--crds``, ``$DRIFTGATE_CRDS`` or ``<root>/crds/``)."""
    try:
        return crd.locate(root, crds)
    except FileNotFoundError as exc:
        raise UsageError(str(exc), hint="point --crds at a folder of CRD YAML files") from None


def render_files(root: Path, spec_dir: Path, only: str | None = None,
                 warnings: list[Problem] | None = None, crds: Path | None = None,
                 draw: bool = True) -> dict[str, str | bytes]:
    """The rendered tree, validated. Pictures keep the committed bytes when what they show did not
    change (:func:`driftgate.render.plots.resolve`); with ``draw=False`` a picture that would have to be
    drawn is left out of the result."""
    files, _ = _render_files(root, spec_dir, only, warnings, crds, draw)
    return files


def _render_files(root: Path, spec_dir: Path, only: str | None, warnings: list[Problem] | None,
                  crds: Path | None, draw: bool) -> tuple[dict[str, str | bytes], list[str]]:
    source = crd_source(root, crds)
    rendered = render_all(contexts(root, spec_dir, only, warnings), shared=only is None)
    files, undrawn = plots.resolve(root, rendered, draw=draw)
    verify(files, source, warnings)
    return files, undrawn


def render(root: Path, spec_dir: Path, only: str | None = None,
           warnings: list[Problem] | None = None, crds: Path | None = None) -> output.Diff:
    files = render_files(root, spec_dir, only, warnings, crds)
    return output.write(root, files, prune=only is None)


def check(root: Path, spec_dir: Path, warnings: list[Problem] | None = None,
          crds: Path | None = None) -> output.Diff:
    """What ``render`` would change, without drawing a picture: a picture whose inputs changed is stale
    (or missing), whatever matplotlib is installed."""
    files, undrawn = _render_files(root, spec_dir, None, warnings, crds, draw=False)
    return output.diff(root, files, expected=undrawn)
