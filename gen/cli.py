"""``driftgate``: the command line. Parses options, calls :mod:`gen.pipeline`, prints, exits.

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

from gen import pipeline
from gen.errors import EXIT_INTERNAL, EXIT_USER_ERROR, DriftgateError, ProblemsError

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
        click.echo(f"driftgate: error: {exc.render()}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except Exception:  # anything else is a bug: say so, keep the traceback
        click.echo(traceback.format_exc(), err=True)
        click.echo("driftgate: internal error (a bug in driftgate); please report it with the traceback above.",
                   err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


@main.command()
@_common
@click.option("--model", default=None, help="Only this model.")
@click.option("--force", is_flag=True, help="Refit even when the inputs are unchanged.")
def fit(root: Path, spec_dir: Path | None, model: str | None, force: bool) -> None:
    """Fit baselines and thresholds from the exports."""

    def action() -> int:
        for o in pipeline.fit(root, _spec_dir(root, spec_dir), model, force):
            state = "fitted" if o.refitted else "unchanged"
            note = " (PROVISIONAL: history shorter than history.minimum; manual rollback only)" \
                if o.provisional else ""
            click.echo(f"{o.path}: {state}{note}")
        return 0

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
@click.option("--model", default=None, help="Only this model.")
def render(root: Path, spec_dir: Path | None, model: str | None) -> None:
    """Render generated/ from specs and baselines (pure, no fitting)."""

    def action() -> int:
        _report(pipeline.render(root, _spec_dir(root, spec_dir), model))
        return 0

    _run(action)


@main.command()
@_common
@click.option("--force", is_flag=True, help="Refit even when the inputs are unchanged.")
@click.pass_context
def gen(ctx: click.Context, root: Path, spec_dir: Path | None, force: bool) -> None:
    """Fit (when inputs changed) and render."""

    def action() -> int:
        for o in pipeline.fit(root, _spec_dir(root, spec_dir), None, force):
            click.echo(f"{o.path}: {'fitted' if o.refitted else 'unchanged'}")
        _report(pipeline.render(root, _spec_dir(root, spec_dir)))
        return 0

    _run(action)


@main.command()
@_common
@click.option("--format", "fmt", type=click.Choice(["text", "github"]), default="text", show_default=True)
def check(root: Path, spec_dir: Path | None, fmt: str) -> None:
    """Render in memory; exit 1 listing every stale, missing or orphaned file."""

    def action() -> int:
        diff = pipeline.check(root, _spec_dir(root, spec_dir))
        for kind, items in (("missing", diff.missing), ("stale", diff.stale), ("orphaned", diff.orphaned)):
            for rel in items:
                if fmt == "github":
                    click.echo(f"::error file={rel}::{kind}: run 'make gen' and commit the result")
                else:
                    click.echo(f"{rel}: {kind}")
        if diff.clean:
            click.echo("generated/ is up to date")
            return 0
        click.echo("generated/ is out of date: run 'make gen' and commit the result", err=True)
        return 1

    _run(action, github=fmt == "github")


@main.command()
@_common
@click.option("--format", "fmt", type=click.Choice(["text", "github"]), default="text", show_default=True)
def validate(root: Path, spec_dir: Path | None, fmt: str) -> None:
    """Validate specs and baselines without writing anything."""

    def action() -> int:
        ctxs = pipeline.contexts(root, _spec_dir(root, spec_dir))
        click.echo(f"{len(ctxs)} model(s) valid: {', '.join(c.spec.name for c in ctxs)}")
        return 0

    _run(action, github=fmt == "github")
