"""The pipeline as library functions: fit, render, gen, check. The CLI only calls these.

Nothing here prints or exits; every function returns what it did or raises a DriftgateError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from driftgate import baseline as bl
from driftgate.errors import BaselineError, Problem, UsageError
from driftgate.fit import evidence as ev
from driftgate.model import ModelSpec
from driftgate.render import incremental, output, plots
from driftgate.render.context import ModelContext, build, check_baseline
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
        warnings: list[Problem] | None = None, workers: int | None = None, scheduler: str | None = None,
        progress: Callable[[int, int], None] | None = None) -> list[FitOutcome]:
    """Fit every model whose inputs changed (every model with ``force``): serially by default, on a local
    Dask cluster of ``workers`` processes, or on the Dask scheduler at ``scheduler``
    (:mod:`driftgate.fit.fleet`). The files written are the same bytes either way, all at once at the end;
    ``progress(done, total)`` is called as models finish."""
    from driftgate.fit import fleet  # scipy, pandas: not for render and check
    from driftgate.fit.overrun import exceeds
    from driftgate.fit.run import input_hash

    specs = load_specs(root, spec_dir, only, check_exports=True, warnings=warnings)
    outcomes: dict[str, FitOutcome] = {}
    over: set[str] = set()  # models a signal of which fired beyond its budget in the backtest
    stale = []
    for spec in specs:
        rel = baseline_path(spec)
        path = root / rel
        if not force and path.is_file():
            try:
                old = bl.load(path, rel, root=root)
            except BaselineError:
                old = None
            if old is not None and old.input_hash == input_hash(root, spec):
                outcomes[spec.name] = FitOutcome(spec.name, rel, False, old.provisional)
                if exceeds(old):
                    over.add(spec.name)
                continue
        stale.append(spec)
    texts: dict[str, str | bytes] = {}
    for spec, done in zip(stale, fleet.fit_many(root, stale, workers, scheduler, progress), strict=True):
        texts[baseline_path(spec)] = done.baseline_text
        texts[evidence_path(spec)] = done.evidence_text
        outcomes[spec.name] = FitOutcome(spec.name, baseline_path(spec), True, done.provisional)
        if done.overrun:
            over.add(spec.name)
    output.write(root, texts, prune=False)
    if warnings is not None:
        warnings.extend(overruns(root, [spec for spec in specs if spec.name in over]))
    return [outcomes[spec.name] for spec in specs]


def overruns(root: Path, specs: list[ModelSpec]) -> list[Problem]:
    """A warning per signal whose backtest saw more than its budget allows (:mod:`driftgate.fit.overrun`),
    with the spans to look at: read from the baselines and evidence of ``specs`` just written (or found
    unchanged). :func:`fit` passes only the models whose baseline :func:`~driftgate.fit.overrun.exceeds`."""
    from driftgate.fit.overrun import overruns as signal_overruns

    found = []
    for spec in specs:
        rel = baseline_path(spec)
        base = bl.load(root / rel, rel, root=root)
        found.extend(signal_overruns(base, ev.load(root / evidence_path(spec), evidence_path(spec), root, base), rel))
    return found


def contexts(root: Path, spec_dir: Path, only: str | None = None,
             warnings: list[Problem] | None = None, any_fit_version: bool = False) -> list[ModelContext]:
    """The render context of every model (``any_fit_version``: read baselines of an older driftgate,
    for ``driftgate review`` of a BASE that predates an upgrade; see :func:`driftgate.baseline.load`)."""
    specs = load_specs(root, spec_dir, only, check_exports=False, warnings=warnings)
    out, problems, hints = [], [], []
    for spec in specs:
        try:
            out.append(model_context(root, spec, warnings, any_fit_version))
        except BaselineError as exc:
            problems.extend(exc.problems)
            hints.append(exc.hint)  # e.g. "refit with 'driftgate fit --force'" for a malformed file
    if problems:
        raise BaselineError(list[Problem](problems), hint=next((h for h in hints if h), ""))
    return out


def model_context(root: Path, spec: ModelSpec, warnings: list[Problem] | None = None,
                  any_fit_version: bool = False) -> ModelContext:
    """One model's render context: its baseline (checked against the spec) and evidence."""
    rel = baseline_path(spec)
    base = bl.load(root / rel, rel, any_fit_version, root)
    check_baseline(spec, base, rel)
    if base.provisional and warnings is not None:
        days = base.history_days - base.excluded_days
        less = f" ({base.excluded_days:.1f} excluded by history.exclude)" if base.excluded_days else ""
        warnings.append(Problem(rel, 0, 0, "", f"provisional: {days:.1f} days of history{less}, the spec "
                                               f"asks for {base.minimum_days:g}; every signal routes to manual "
                                               f"rollback until a refit on enough history", "warning"))
    evidence = ev.load(root / evidence_path(spec), evidence_path(spec), root, base)
    if evidence is None and warnings is not None:
        warnings.append(Problem(evidence_path(spec), 0, 0, "", "no evidence file: the plan has no pictures; "
                                "run 'driftgate fit --force'", "warning"))
    return build(spec, base, evidence)


def crd_source(root: Path, crds: Path | None) -> crd.Source:
    """The CRD schemas to validate against (``--crds``, ``$DRIFTGATE_CRDS`` or ``<root>/crds/``)."""
    try:
        return crd.locate(root, crds)
    except FileNotFoundError as exc:
        raise UsageError(str(exc), hint="point --crds at a folder of CRD YAML files") from None


def render_files(root: Path, spec_dir: Path, only: str | None = None,
                 warnings: list[Problem] | None = None, crds: Path | None = None,
                 draw: bool = True, use_cache: bool = False) -> dict[str, str | bytes]:
    """The rendered tree, validated. Pictures keep the committed bytes when what they show did not
    change (:func:`driftgate.render.plots.resolve`); with ``draw=False`` a picture that would have to be
    drawn is left out of the result. ``use_cache``: reuse the models whose inputs and outputs did not
    change since the last render here (:mod:`driftgate.render.incremental`)."""
    return _render_tree(root, spec_dir, only, warnings, crds, draw, use_cache).files


def _render_tree(root: Path, spec_dir: Path, only: str | None, warnings: list[Problem] | None,
                 crds: Path | None, draw: bool, use_cache: bool = False) -> incremental.Tree:
    source = crd_source(root, crds)
    if only is None:  # the whole tree: models in parallel, unchanged ones reused from the cache
        return incremental.render_tree(root, spec_dir, source, warnings, draw, use_cache=use_cache)
    from driftgate.render.targets import render_all  # scipy (the plan's audit): only when rendering

    rendered = render_all(contexts(root, spec_dir, only, warnings), shared=False)
    files, undrawn = plots.resolve(root, rendered, draw=draw)
    verify(files, source, warnings)
    return incremental.Tree(files, undrawn, [only])


def render(root: Path, spec_dir: Path, only: str | None = None,
           warnings: list[Problem] | None = None, crds: Path | None = None, use_cache: bool = True) -> output.Diff:
    tree = _render_tree(root, spec_dir, only, warnings, crds, True, use_cache)
    diff = output.write(root, tree.files, prune=only is None, known=tree.read)
    incremental.save(root, tree)  # only once the tree is written
    return diff


def check(root: Path, spec_dir: Path, warnings: list[Problem] | None = None,
          crds: Path | None = None, use_cache: bool = True) -> output.Diff:
    """What ``render`` would change, without drawing a picture: a picture whose inputs changed is stale
    (or missing), whatever matplotlib is installed. Reads the render cache, writes nothing."""
    tree = _render_tree(root, spec_dir, None, warnings, crds, False, use_cache)
    return output.diff(root, tree.files, expected=tree.undrawn, known=tree.read)
