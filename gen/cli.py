"""``driftgate``: the command line. Parses options, calls :mod:`driftgate.pipeline`, prints, exits.

Exit codes: 0 ok; 1 a user error (bad spec, export or baseline; stale files under ``check``);
3 an internal error (a bug in driftgate: the traceback is printed).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from driftgate import pipeline
from driftgate.errors import (
    EXIT_INTERNAL,
    EXIT_USER_ERROR,
    DriftgateError,
    Problem,
    ProblemsError,
    github_message,
    github_property,
    visible,
)

F = TypeVar("F", bound=Callable[..., Any])


def _common(fn: F) -> F:
    fn = click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
                      show_default=True, help="The infrastructure repository (specs/, baselines/, generated/).")(fn)
    fn = click.option("--specs", "spec_dir", type=click.Path(path_type=Path), default=None,
                      help="Spec directory [default: <root>/specs].")(fn)
    return fn


def _spec_dir(root: Path, spec_dir: Path | None) -> Path:
    return spec_dir if spec_dir is not None else root / "specs"


def _run(action: Callable[[], int], github: bool = False) -> None:
    try:
        code = action()
    except DriftgateError as exc:
        if github and isinstance(exc, ProblemsError):
            for p in exc.problems:
                click.echo(p.format_github())
        click.echo(f"driftgate: error: {visible(exc.render())}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except OSError as exc:  # the machine, not driftgate: a full disk, a read-only mount, no permission
        where = f"{exc.filename}: " if isinstance(exc.filename, str) else ""
        click.echo(f"driftgate: error: {visible(where, ascii_only=True)}{exc.strerror or exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except Exception:  # anything else is a bug: say so, keep the traceback
        click.echo(traceback.format_exc(), err=True)
        click.echo("driftgate: internal error (a bug in driftgate); please report it with the traceback above.",
                   err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(code)


_NO_ARGS_HELP: type[Exception] = getattr(click.exceptions, "NoArgsIsHelpError", type("_Never", (Exception,), {}))


class _Group(click.Group):
    """Usage errors (an unknown option, ``--root`` naming a file) exit 1 like every other user error, with
    one paragraph on stderr, instead of click's exit 2 and its usage block."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except _NO_ARGS_HELP as exc:  # 'driftgate' alone (click >= 8.2): the help, exit 0
            ctx = getattr(exc, "ctx", None)
            click.echo(ctx.get_help() if ctx is not None else "")
            sys.exit(0)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "driftgate"
            click.echo(f"driftgate: error: {visible(exc.format_message())} (see '{command} --help')", err=True)
            sys.exit(EXIT_USER_ERROR)
        except click.ClickException as exc:
            click.echo(f"driftgate: error: {visible(exc.format_message())}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except click.exceptions.Abort:
            click.echo("driftgate: error: aborted", err=True)
            sys.exit(EXIT_USER_ERROR)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="driftgate")
def main() -> None:
    """Fit rollback thresholds from metric history and render the rules that enforce them.

    \b
    driftgate fit      specs + exports  -> baselines/<model>.yaml
    driftgate render   specs + baselines -> generated/ (Argo, Terraform, Prometheus, Alertmanager, plans)
    driftgate gen      fit (skipped when inputs are unchanged) + render
    driftgate check    exit 1 when generated/ is stale

    Exit codes: 0 ok, 1 user error or stale output, 3 internal error.
    """


def _crds(fn: F) -> F:
    return click.option("--crds", type=click.Path(path_type=Path), default=None, envvar="DRIFTGATE_CRDS",
                        show_envvar=True,
                        help="Folder of CRD YAML files to validate the generated objects against strictly "
                             "(a Helm chart's crds/, 'kubectl get crd NAME -o yaml' output) "
                             "[default: <root>/crds/ when present].")(fn)


def _strict(fn: F) -> F:
    return click.option("--strict", is_flag=True,
                        help="Fail (exit 1) on warnings: thin or provisional history, spec naming, a "
                             "backtest beyond its budget (fit, gen).")(fn)


def _warned(warnings: list[Problem], strict: bool, github: bool = False) -> int:
    """Print warnings to stderr; under ``--strict`` they fail the command."""
    for w in sorted(set(warnings)):
        click.echo(w.format_github() if github else w.format(), err=not github)
    if strict and warnings:
        click.echo(f"driftgate: error: {len(set(warnings))} warning(s) and --strict", err=True)
        return EXIT_USER_ERROR
    return 0


def _fleet(fn: F) -> F:
    """--workers / --scheduler / --progress: fit the models on Dask (driftgate.fit.fleet)."""
    fn = click.option("--progress/--no-progress", "progress", default=None,
                      help="A progress bar on stderr [default: when stderr is a terminal and the fit runs on "
                           "Dask].")(fn)
    fn = click.option("--scheduler", default=None, metavar="ADDRESS",
                      help="Fit on the existing Dask scheduler at ADDRESS (tcp://host:8786); its workers must see "
                           "the repository at the same path and run the same driftgate. Needs driftgate[fleet].")(fn)
    fn = click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
                      help="Fit on a local Dask cluster of N worker processes [default: serially in this process]. "
                           "Needs driftgate[fleet].")(fn)
    return fn


def _fleet_options(workers: int | None, scheduler: str | None, progress: bool | None) -> _ProgressBar | None:
    """Check --workers/--scheduler (one or the other) and return the progress bar, if any."""
    if workers is not None and scheduler is not None:
        raise click.UsageError("--workers and --scheduler are mutually exclusive: a local Dask cluster or an "
                               "existing one", click.get_current_context(silent=True))
    if progress is None:
        progress = (workers is not None or scheduler is not None) and sys.stderr.isatty()
    return _ProgressBar() if progress else None


class _ProgressBar:
    """``fit [#####     ] 3/10 models`` on one stderr line, rewritten in place; stdout stays clean."""

    width = 30

    def __init__(self) -> None:
        self.open = False  # a line is drawn and not ended

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // total if total else self.width
        click.echo(f"\rfit [{'#' * filled}{' ' * (self.width - filled)}] {done}/{total} models", err=True, nl=False)
        self.open = done < total
        if not self.open:
            click.echo("", err=True)

    def close(self) -> None:
        """End a line left open by a failed fit, so that the error starts on a line of its own."""
        if self.open:
            click.echo("", err=True)
            self.open = False


@main.command()
@_common
@_strict
@click.option("--model", default=None, help="Only this model.")
@click.option("--force", is_flag=True, help="Refit even when the inputs are unchanged.")
@_fleet
def fit(root: Path, spec_dir: Path | None, strict: bool, model: str | None, force: bool, workers: int | None,
        scheduler: str | None, progress: bool | None) -> None:
    """Fit baselines and thresholds from the exports."""
    bar = _fleet_options(workers, scheduler, progress)

    def action() -> int:
        warnings: list[Problem] = []
        try:
            outcomes = pipeline.fit(root, _spec_dir(root, spec_dir), model, force, warnings, workers, scheduler, bar)
        finally:
            if bar is not None:
                bar.close()
        for o in outcomes:
            state = "fitted" if o.refitted else "unchanged"
            note = " (PROVISIONAL: history shorter than history.minimum; manual rollback only)" \
                if o.provisional else ""
            click.echo(f"{o.path}: {state}{note}")
        return _warned(warnings, strict)

    _run(action)


def _report(diff: Any) -> None:
    for rel in diff.missing:
        click.echo(f"created {rel}")
    for rel in diff.stale:
        click.echo(f"updated {rel}")
    for rel in diff.orphaned:
        click.echo(f"removed {rel}")
    if diff.clean:
        click.echo("generated/ is up to date")


@main.command()
@_common
@_strict
@_crds
@click.option("--model", default=None, help="Only this model.")
@click.option("--no-cache", is_flag=True,
              help="Render every model (by default a model whose inputs and generated files did not change since the "
                   "last render here is reused: .driftgate/render-cache.json).")
def render(root: Path, spec_dir: Path | None, strict: bool, crds: Path | None, model: str | None,
           no_cache: bool) -> None:
    """Render generated/ from specs and baselines (pure, no fitting)."""

    def action() -> int:
        warnings: list[Problem] = []
        _report(pipeline.render(root, _spec_dir(root, spec_dir), model, warnings, crds, use_cache=not no_cache))
        return _warned(warnings, strict)

    _run(action)


@main.command()
@_common
@_strict
@_crds
@click.option("--force", is_flag=True, help="Refit even when the inputs are unchanged.")
@_fleet
def gen(root: Path, spec_dir: Path | None, strict: bool, crds: Path | None, force: bool, workers: int | None,
        scheduler: str | None, progress: bool | None) -> None:
    """Fit (when inputs changed) and render."""
    bar = _fleet_options(workers, scheduler, progress)

    def action() -> int:
        warnings: list[Problem] = []  # both stages read the specs: the same warnings, printed once
        from driftgate.render import output

        output.preflight(root, [], output.MANAGED_DIRS)  # a generated/ that cannot be written: before any fit
        try:
            fitted = pipeline.fit(root, _spec_dir(root, spec_dir), None, force, warnings, workers, scheduler, bar)
        finally:
            if bar is not None:
                bar.close()
        diff = pipeline.render(root, _spec_dir(root, spec_dir), None, warnings, crds)
        for o in fitted:  # printed once both stages succeeded: a failing run prints only its error
            click.echo(f"{o.path}: {'fitted' if o.refitted else 'unchanged'}")
        _report(diff)
        return _warned(warnings, strict)

    _run(action)


@main.command()
@_common
@_strict
@_crds
@click.option("--rollouts", "rollout_paths", multiple=True, metavar="PATH",
              help="Rollout manifests (files, folders, kustomize/helm output, - for stdin) that must be wired to "
                   "the criteria: the freeze gate first, the background analysis with canary-hash. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["text", "github"]), default="text", show_default=True)
@click.option("--no-cache", is_flag=True,
              help="Render every model in memory (by default a model whose inputs and generated files did not change "
                   "since the last render here is not rendered again: .driftgate/render-cache.json).")
def check(root: Path, spec_dir: Path | None, strict: bool, crds: Path | None, rollout_paths: tuple[str, ...],
          fmt: str, no_cache: bool) -> None:
    """Render in memory; exit 1 listing every stale, missing or orphaned file (and unwired Rollouts)."""

    def action() -> int:
        warnings: list[Problem] = []
        diff = pipeline.check(root, _spec_dir(root, spec_dir), warnings, crds, use_cache=not no_cache)
        wiring: list[Problem] = []
        if rollout_paths:
            from driftgate.spec.load import load_specs
            from driftgate.validate import rollouts

            wiring = rollouts.check(load_specs(root, _spec_dir(root, spec_dir), check_exports=False), rollout_paths)
            for p in wiring:
                click.echo(p.format_github() if fmt == "github" else p.format())
        for kind, items in (("missing", diff.missing), ("stale", diff.stale), ("orphaned", diff.orphaned)):
            for rel in items:
                if fmt == "github":
                    click.echo(f"::error file={github_property(rel)}::"
                               f"{github_message(kind)}: run 'make gen' and commit the result")
                else:
                    click.echo(f"{visible(rel, ascii_only=True)}: {kind}")
        warned = _warned(warnings, strict, github=fmt == "github")
        if wiring:
            click.echo(f"{len(wiring)} Rollout wiring problem(s): the criteria would not enforce", err=True)
            return 1
        if diff.clean:
            click.echo("generated/ is up to date")
            return warned
        click.echo("generated/ is out of date: run 'make gen' and commit the result", err=True)
        return 1

    _run(action, github=fmt == "github")


@main.command()
@_common
@_strict
@click.option("--format", "fmt", type=click.Choice(["text", "github"]), default="text", show_default=True)
@click.option("--spec-only", is_flag=True,
              help="Check the specs alone (a new model before it has exports or a baseline): every spec key, "
                   "name and secret reference; not the exports, the baseline or the rendered files.")
def validate(root: Path, spec_dir: Path | None, strict: bool, fmt: str, spec_only: bool) -> None:
    """Validate specs and baselines without writing anything."""
    from driftgate.spec.load import load_specs

    def action() -> int:
        warnings: list[Problem] = []
        if spec_only:
            specs = load_specs(root, _spec_dir(root, spec_dir), None, check_exports=False, warnings=warnings)
            click.echo(f"{len(specs)} spec(s) valid: {', '.join(s.name for s in specs)} (spec only: the exports, "
                       f"the baselines and the rendered files were not checked; 'driftgate fit' does that)")
        else:
            ctxs = pipeline.contexts(root, _spec_dir(root, spec_dir), None, warnings)
            click.echo(f"{len(ctxs)} model(s) valid: {', '.join(c.spec.name for c in ctxs)}")
        return _warned(warnings, strict, github=fmt == "github")

    _run(action, github=fmt == "github")


@main.command()
@_common
@click.argument("base")
@click.option("--fail-on-loosen", is_flag=True, help="Exit 1 when a change loosens enforcement.")
@click.option("--strict", is_flag=True,
              help="Flag a looser number moved by refit noise (inside the previous fit's 90% band) too.")
def review(root: Path, spec_dir: Path | None, base: str, fail_on_loosen: bool, strict: bool) -> None:
    """Markdown summary of enforcement changes since git ref BASE (for a PR comment), each with its cause."""
    from driftgate.review import review as run_review

    def action() -> int:
        text, changes = run_review(root, _spec_dir(root, spec_dir), base, strict=strict)
        click.echo(text, nl=False)
        return 1 if fail_on_loosen and any(c.loosens for c in changes) else 0

    _run(action)


@main.command()
@_common
@click.option("--model", default=None, help="Only this model [default: every model].")
@click.option("--start", default="-28d", show_default=True,
              help="RFC 3339 time (2026-10-01T00:00:00Z) or -<duration> before --end.")
@click.option("--end", default="now", show_default=True, help="RFC 3339 time or 'now'.")
@click.option("--step", default="1m", show_default=True, help="Resolution of the export: the scrape interval.")
@click.option("--url", default=None, help="Prometheus base URL [default: the spec's prometheus.address], "
                                          "e.g. http://127.0.0.1:9090 for a port-forward.")
@click.option("--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True,
              help="Seconds per request (a timed-out request is retried).")
@click.option("--points-per-chunk", type=click.IntRange(min=2, max=11000), default=11000, show_default=True,
              help="Points per series per request (Prometheus allows at most 11000).")
def export(root: Path, spec_dir: Path | None, model: str | None, start: str, end: str, step: str,
           url: str | None, timeout: float, points_per_chunk: int) -> None:
    """Fetch the history every signal needs from Prometheus into the spec's export files.

    Writes the history.exports files and <dir>/manifest.json. An interrupted export resumes:
    run it again with the same arguments and only the missing chunks are fetched.
    """
    from driftgate import export as history
    from driftgate.exports.promhttp import rfc3339

    def progress(p: history.Progress) -> None:
        note = " (cached)" if p.cached else ""
        span = f"{rfc3339(p.chunk.start)}..{rfc3339(p.chunk.end)}"
        click.echo(f"{p.model}: chunk {p.done}/{p.total} {p.metric} {span}{note}", err=True)

    def action() -> int:
        results = history.export(root, _spec_dir(root, spec_dir), model, start, end, step, url=url, timeout=timeout,
                                 points_per_chunk=points_per_chunk, progress=progress,
                                 on_retry=lambda msg: click.echo(f"retrying: {msg}", err=True))
        for r in results:
            for f in r.files:
                click.echo(f"{f.path}: {f.series} series, {f.samples} samples")
            click.echo(f"{r.manifest}: {r.fetched} chunk(s) fetched, {r.cached} resumed")
            for rel in r.unused:
                click.echo(f"driftgate: warning: {rel}: listed in history.exports but no signal needs it; "
                           f"left unchanged", err=True)
        return 0

    _run(action)


@main.command()
@_common
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--format", "fmt", type=click.Choice(["text", "github", "sarif"]), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report to this file (e.g. audit.sarif for code scanning) instead of standard output.")
def audit(root: Path, spec_dir: Path | None, paths: tuple[str, ...], fmt: str, output: Path | None) -> None:
    """Coverage: is every spec'd model enforced in these Kubernetes manifests? Exit 1 on any finding.

    PATH: files or folders of YAML (plain, kustomize build or helm template output), - for stdin.
    Reports Rollouts of a model not wired to its criteria, models deployed by a Deployment, models
    whose Rollout is nowhere, and Rollouts referencing an analysis template that does not exist."""
    from importlib.metadata import PackageNotFoundError, version

    from driftgate import audit as au
    from driftgate.spec.load import load_specs

    def action() -> int:
        specs = load_specs(root, _spec_dir(root, spec_dir), None, check_exports=False)
        generated = {(s.namespace, f"{s.name}-{suffix}") for s in specs for suffix in ("rollback-criteria",
                                                                                       "freeze-gate")}
        findings, problems = au.audit(specs, paths, generated)
        if problems:
            raise ProblemsError(problems)
        try:
            ours = version("driftgate")
        except PackageNotFoundError:  # pragma: no cover - run from a source tree without metadata
            ours = "0"
        report = {"text": au.text, "github": au.github}.get(fmt, lambda f: au.sarif(f, ours))(findings)
        if output is not None:
            tmp = output.with_name(f".{output.name}.tmp")
            tmp.write_text(report, encoding="utf-8")
            tmp.replace(output)
            click.echo(f"driftgate audit: {len(findings)} finding(s); report written to {output}")
        else:
            click.echo(report, nl=False)
        return EXIT_USER_ERROR if findings else 0

    _run(action, github=fmt == "github")


@main.command()
def schema() -> None:
    """Print the JSON Schema of a model spec (for editors; the committed copy is docs/spec.schema.json)."""
    from driftgate.spec.schema import dumps

    click.echo(dumps(), nl=False)
