"""Fitting many models: serially in this process, or on Dask (``dask.distributed``).

``driftgate fit --workers N`` starts a local Dask cluster of N single-threaded worker processes;
``--scheduler ADDRESS`` submits to an existing Dask scheduler, whose workers must see the repository at
the same absolute path and run the same driftgate. Either way each task fits one model *and serialises
it* (the baseline YAML and the evidence JSON), so the files written are the very bytes a serial fit
writes. Results come back in the order of the specs, whatever order the workers finish in.

A :class:`~driftgate.errors.DriftgateError` raised in a worker (a bad export, a too-short history) is
carried back as its class, arguments and attributes and raised again here, unchanged: the same message
and exit code as a serial fit. When several models fail, the error is the one of the first failing model
in spec order, the one a serial fit stops at.

Nothing here imports Dask unless ``workers`` or ``scheduler`` is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from driftgate import baseline as bl
from driftgate.errors import DriftgateError, UsageError
from driftgate.fit import evidence as ev
from driftgate.fit import run
from driftgate.fit.overrun import exceeds
from driftgate.model import ModelSpec
from driftgate.render.env import header

INSTALL_HINT = "pip install 'driftgate[fleet]'"
CONNECT_TIMEOUT = 10.0  # seconds to reach a --scheduler before giving up

Progress = Callable[[int, int], None]  # (models done, models in all)


@dataclass(frozen=True)
class Fitted:
    """One model's fit, serialised: what ``baselines/`` receives for it."""

    model: str
    baseline_text: str
    evidence_text: str
    provisional: bool
    overrun: bool = False  # a signal's backtest exceeds its budget (driftgate.fit.overrun): warned about


def fit_one(root: Path, spec: ModelSpec) -> Fitted:
    """Fit one model and serialise it (the same function runs in this process and in a Dask worker)."""
    fitted, evidence = run.fit_model_full(root, spec)
    head = header([spec.spec_path, *spec.exports]).replace("run 'make gen'", "run 'make gen' to refit")
    return Fitted(spec.name, bl.dumps(fitted, head), ev.dumps(evidence), fitted.provisional, exceeds(fitted))


def fit_many(root: Path, specs: Sequence[ModelSpec], workers: int | None = None, scheduler: str | None = None,
             progress: Progress | None = None) -> list[Fitted]:
    """Fit ``specs``: serially (neither ``workers`` nor ``scheduler``), on a local Dask cluster of
    ``workers`` processes, or on the Dask scheduler at ``scheduler``. Results in the order of ``specs``."""
    if workers is not None and scheduler is not None:
        raise UsageError("--workers and --scheduler are mutually exclusive: a local cluster or an existing one")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers: expected 1 or more, found {workers}")
    if not specs:
        return []
    if workers is None and scheduler is None:
        results = []
        for i, spec in enumerate(specs):
            results.append(fit_one(root, spec))
            if progress is not None:
                progress(i + 1, len(specs))
        return results
    distributed = _import_distributed()
    with _quiet():
        if scheduler is not None:
            client = _connect(distributed, scheduler)
            cluster = None
        else:
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.CRITICAL)
            client = distributed.Client(cluster, timeout=CONNECT_TIMEOUT)
        try:
            return _run(distributed, client, root.absolute(), specs, progress)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise UsageError(f"--workers and --scheduler fit on Dask, which is not installed: {INSTALL_HINT}") from None
    return distributed


def _connect(distributed: Any, address: str) -> Any:
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, ValueError, TypeError, TimeoutError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise UsageError(f"--scheduler {address}: cannot connect to a Dask scheduler: {detail}") from None


class _quiet:
    """Dask's own log lines (cluster start and stop, closed comms) off stderr while the fleet fits."""

    def __init__(self) -> None:
        self._loggers = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
        self._levels: list[int] = []

    def __enter__(self) -> None:
        self._levels = [lg.level for lg in self._loggers]
        for lg in self._loggers:
            lg.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        for lg, level in zip(self._loggers, self._levels, strict=True):
            lg.setLevel(level)


def _task(root: Path, spec: ModelSpec) -> tuple[str, Any]:
    """Run in a worker: the fit, or the DriftgateError as plain data (a ProblemsError does not survive
    pickle's default ``cls(*args)``: its constructor takes problems, not the message)."""
    try:
        return "ok", (_version(), fit_one(root, spec))
    except DriftgateError as exc:
        return "error", (type(exc), exc.args, dict(vars(exc)))


def _revive(cls: type[DriftgateError], args: tuple[Any, ...], state: dict[str, Any]) -> DriftgateError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    vars(exc).update(state)
    return exc


def _version() -> str:
    try:
        return metadata.version("driftgate")
    except metadata.PackageNotFoundError:  # a source tree on the path, not installed
        return "unknown"


def _run(distributed: Any, client: Any, root: Path, specs: Sequence[ModelSpec],
         progress: Progress | None) -> list[Fitted]:
    futures = [client.submit(_task, root, spec, key=f"driftgate-fit-{i}-{spec.name}", pure=False)
               for i, spec in enumerate(specs)]
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[Fitted | None] = [None] * len(specs)
    first_error: tuple[int, DriftgateError] | None = None
    done = 0
    ours = _version()
    for future in distributed.as_completed(futures):
        i = index[future.key]
        if future.cancelled():
            continue
        status, payload = future.result()  # anything but a DriftgateError (a bug) is raised here as it was
        done += 1
        if progress is not None:
            progress(done, len(specs))
        if status == "error":
            if first_error is None or i < first_error[0]:
                first_error = (i, _revive(*payload))
                # A serial fit would stop at this model: the later ones need not finish.
                client.cancel([f for f in futures[i + 1:] if not f.done()])
            continue
        version, fitted = payload
        if version != ours:
            raise UsageError(f"--scheduler: a worker runs driftgate {version}, this command {ours}: the fit "
                             f"would not be the serial fit's; install the same driftgate on the workers")
        results[i] = fitted
    if first_error is not None:
        raise first_error[1]
    out = [r for r in results if r is not None]
    assert len(out) == len(specs)
    return out
