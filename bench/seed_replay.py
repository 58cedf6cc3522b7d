"""Seed replay: the incident driftgate exists for, through the generated configuration and the real engines.

The seed: a recommender ships a version with an embedding bug; its output distribution shifts; nobody
notices for 18 hours; ~9M degraded responses (about 140 per second) are served. Here the bundled
example ``reco-ranker`` is released with the same bug, the bug starting at several moments of the
release, and everything downstream is decided by the real tools on the generated files:

* **traffic**: 140 responses/s; the release follows the generated Rollout wiring
  (``generated/argo/reco-ranker-rollout/kustomization.yaml``: freeze gate, ``setWeight`` canary,
  hold, ``setWeight: 100``, bake, completion); per-minute counters per version and pod;
* **rules**: the generated rule file, evaluated by ``promtool test rules`` (Prometheus 2.x and 3.x
  engines) on the replayed series; the firing minutes of every alert and the freeze record are read
  back from promtool's verdicts;
* **Argo**: the generated ``score-drift-auto`` metric, measured every ``interval`` after
  ``initialDelay`` from the release start (the background analysis runs until the rollout completes),
  each measurement decided by Argo Rollouts' own code (``tests/argo_eval``: ``utils/evaluate``);
  an abort returns traffic to the previous version at once;
* **Alertmanager**: who is paged, by ``amtool config routes test`` on the generated
  ``alertmanager.yml``; a page goes out ``group_wait`` after the alert fires.

Cases: the bug starting 0, 30 min, 90 min after the release starts (canary), 150 min (the bake at full
weight), 6 h (after completion); a healthy release; drift of the established stable version (no
release). Printed per case: minutes until traffic is back on the previous version, degraded responses,
who was paged and when, whether the freeze held a re-roll. Targets (PASS/FAIL): canary and bake:
traffic back <= 8 min after onset and <= 0.1% of the seed's 9M degraded responses; after completion: a
page <= 10 min; healthy: no rollback, no page; stable drift: a page, no freeze.

Usage: ``python bench/seed_replay.py [--quick] [--engine prometheus-2|prometheus-3|both]``. ``--quick``
runs one engine (3.x) and shortens the stable-drift history (a ``release.horizon`` of 5h instead of
24h, rendered into a copy: still longer than the 4 h rollout); the full run uses the committed
configuration on both engines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import tools as toolset  # noqa: E402

MODEL = "reco-ranker"
V = "rollouts_pod_template_hash"
RATE = 140.0  # responses per second, the seed's
PER_MIN = int(RATE * 60)
SEED_DEGRADED = 9_000_000
PODS = 3
RELEASE_AT = 60  # minutes of stable traffic before the release starts
COLLAPSE = 0.8  # the embedding bug: this share of the scores lands in one bin


@dataclasses.dataclass(frozen=True)
class Plan:
    """The generated Rollout steps, in minutes from the release start."""

    weight: int  # canary percent
    hold: int  # minutes at the canary weight
    bake: int  # minutes at 100% before completion
    interval: int  # analysis interval, minutes
    initial_delay: int  # minutes

    @property
    def completes(self) -> int:
        return self.hold + self.bake

    def share(self, m: int) -> float:
        """The new version's share of the traffic at minute ``m`` from the release start."""
        if m < 0:
            return 0.0
        return self.weight / 100 if m < self.hold else 1.0


def _minutes(text: str) -> int:
    """Whole minutes of a duration as the generated files and promtool print them (``2h``, ``1d1h9m``)."""
    from driftgate.validate.durations import parse_prom_duration

    return round(parse_prom_duration(text) / 60)


def read_plan(root: Path) -> Plan:
    comp = next(d for d in yaml.safe_load_all((root / f"generated/argo/{MODEL}-rollout/kustomization.yaml").read_text())
                if d)
    ops = yaml.safe_load(comp["patches"][0]["patch"])
    steps = next(op["value"] for op in ops if op["path"].endswith("/steps"))
    weights = [s["setWeight"] for s in steps if "setWeight" in s]
    pauses = [_minutes(s["pause"]["duration"]) for s in steps if "pause" in s]
    criteria = next(d for d in yaml.safe_load_all((root / f"generated/argo/{MODEL}.yaml").read_text())
                    if d and d["metadata"]["name"].endswith("rollback-criteria"))
    metric = next(m for m in criteria["spec"]["metrics"] if m["name"] == "score-drift-auto")
    return Plan(weights[0], pauses[0], pauses[1] if len(pauses) > 1 else 0, _minutes(metric["interval"]),
                _minutes(metric.get("initialDelay", "0s")))


def _integers(shares: np.ndarray, total: int) -> np.ndarray:
    raw = shares / shares.sum() * total
    out = np.floor(raw)
    out[np.argsort(-(raw - out), kind="stable")[: int(total - out.sum())]] += 1
    return out


@dataclasses.dataclass
class Case:
    name: str
    phase: str  # canary | bake | completed | healthy | stable-drift
    onset: int | None  # minutes from the release start (stable-drift: from the replay start)
    release: bool = True


def series(case: Case, plan: Plan, q: np.ndarray, les: list[str], minutes: int) -> list[dict[str, str]]:
    """Per-minute counter increments per version and pod, as promtool input series (exact integers)."""
    bug = q * (1 - COLLAPSE)
    bug[int(np.argmax(q))] += COLLAPSE  # the bug piles scores into the busiest bin's neighbourhood
    out = []
    start = RELEASE_AT if case.release else None
    for version in ("stable", "new") if case.release else ("stable",):
        incs = np.zeros((minutes, len(q)))
        for m in range(minutes):
            rel = m - start if start is not None else -1
            share = plan.share(rel) if version == "new" else 1.0 - (plan.share(rel) if case.release else 0.0)
            if version == "new" and rel < 0:
                continue
            shifted = (case.onset is not None and ((version == "new" and case.release and rel >= case.onset)
                                                   or (version == "stable" and not case.release
                                                       and m >= case.onset)))
            incs[m] = _integers(bug if shifted else q, round(PER_MIN * share))
        born = start if version == "new" and start is not None else 0
        for pod in range(PODS):
            cum = np.cumsum(np.cumsum(np.floor(incs / PODS) + (pod < incs % PODS), axis=0), axis=1)
            for i, le in enumerate(les):
                vals = cum[born:, i]
                text = " ".join(str(int(x)) for x in vals)
                lead = f"_x{born} " if born else ""
                labels = (f'job="{MODEL}",namespace="reco",le="{le}",{V}="{version}",pod="{version}-{pod}"')
                out.append({"series": f"reco_score_bucket{{{labels}}}", "values": lead + text})
    return out


def checks(exprs: dict[str, str], minutes: range) -> list[dict[str, Any]]:
    return [{"expr": f"count({e}) > bool 0", "eval_time": f"{m}m", "exp_samples": [{"labels": "{}", "value": 1}]}
            for e in exprs.values() for m in minutes]


def run_promtool(promtool: str, rules: Path, work: Path, input_series: list[dict[str, str]],
                 exprs: dict[str, str], minutes: range) -> dict[str, set[int]]:
    """The minutes (in ``minutes``) at which each expression holds, as the real engine decides."""
    test = work / "replay.test.yaml"
    test.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m",
                                    "tests": [{"interval": "1m", "input_series": input_series,
                                               "promql_expr_test": checks(exprs, minutes)}]}, width=10**9))
    proc = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=3600)
    failed: dict[str, set[int]] = {k: set() for k in exprs}
    text = proc.stdout + proc.stderr
    for name, expr in exprs.items():
        quoted = json.dumps(f"count({expr}) > bool 0")[1:-1]
        pattern = re.compile(re.escape(f'expr: "{quoted}", time: ') + r"([0-9a-z]+),")
        failed[name] = {_minutes(x) for x in pattern.findall(text)}
    if proc.returncode != 0 and not any(failed.values()):
        raise SystemExit(f"promtool failed without a verdict:\n{text[-3000:]}")
    return {k: {m for m in minutes if m not in failed[k]} for k in exprs}


def argo_phases(metric: dict[str, Any], results: list[list[float]]) -> list[str]:
    requests = "".join(json.dumps({"metric": metric, "result": r}) + "\n" for r in results)
    proc = subprocess.run([str(toolset.ARGO_EVAL)], input=requests, capture_output=True, text=True, timeout=300,
                          check=True)
    return [json.loads(line)["phase"] for line in proc.stdout.splitlines()]


# release.auto_undo after completion, modelled (no cluster here): the Sensor creates the Job and its two
# kubectl-wait guards pass in ~15 s; the undo is one patch, and the previous revision's pods start in ~1 min
# (its ReplicaSet was scaled down at completion; rollbackWindow skips the steps and the analysis).
UNDO_JOB_MIN = 0.25
POD_START_MIN = 1.0


def with_horizon(spec_text: str, horizon: str) -> str:
    """The spec with ``release.horizon`` set (the example already has a ``release:`` mapping)."""
    if "\nrelease:\n" in spec_text:
        return spec_text.replace("\nrelease:\n", f"\nrelease:\n  horizon: {horizon}\n", 1)
    return spec_text + f"release:\n  horizon: {horizon}\n"


def receivers(amtool: str, config: Path, labels: dict[str, str]) -> list[str]:
    proc = subprocess.run([amtool, "config", "routes", "test", f"--config.file={config}",
                           *(f"{k}={v}" for k, v in labels.items())], capture_output=True, text=True, timeout=60,
                          check=True)
    return proc.stdout.strip().split(",")


def replay(case: Case, plan: Plan, root: Path, promtool: str, amtool: str, q: np.ndarray,
           les: list[str]) -> dict[str, Any]:
    rules = root / f"generated/prometheus/rules/{MODEL}.rules.yaml"
    metric = next(m for d in yaml.safe_load_all((root / f"generated/argo/{MODEL}.yaml").read_text()) if d
                  for m in d["spec"]["metrics"] if m["name"] == "score-drift-auto")
    if case.release:
        start = RELEASE_AT
        onset_abs = start + (case.onset if case.onset is not None else 0)
        end = start + max(plan.completes + 20, (case.onset or 0) + 40)
    else:
        start, onset_abs = 0, case.onset or 0
        end = onset_abs + 40
    version = "new" if case.release else "stable"
    exprs = {
        "auto": f'ALERTS{{alertname="DriftgateAutoRollback",alertstate="firing",{V}="{version}"}}',
        "drift": f'ALERTS{{alertname="DriftgateDrift",alertstate="firing",{V}="{version}"}}',
        "manual": f'ALERTS{{alertname="DriftgateManualReview",alertstate="firing",{V}="{version}"}}',
        "freeze": f'model:driftgate_freeze:active{{model="{MODEL}"}}',
    }
    first = onset_abs if case.onset is not None else start
    window = range(first, end)
    with tempfile.TemporaryDirectory() as tmp:
        held = run_promtool(promtool, rules, Path(tmp), series(case, plan, q, les, end + 1), exprs, window)
    out: dict[str, Any] = {"case": case.name, "phase": case.phase}
    auto_at = min(held["auto"], default=None)
    drift_at = min(held["drift"], default=None)
    # Argo: the background analysis from the release start until the rollout completes.
    abort_at = None
    if case.release:
        stop = min(end, start + plan.completes)
        times = [t for j in range(10_000) if (t := start + plan.initial_delay + j * plan.interval) < stop]
        results = [[1.0] if t in held["auto"] else [0.0] for t in times if t >= first]
        phases = argo_phases(metric, results) if results else []
        failures = 0
        for t, phase in zip([t for t in times if t >= first], phases, strict=True):
            if phase == "Failed":
                failures += 1
                if failures > int(metric.get("failureLimit", 0)):
                    abort_at = t
                    break
    fired = auto_at if auto_at is not None else drift_at
    alert_name = "DriftgateAutoRollback" if auto_at is not None else "DriftgateDrift" if drift_at is not None else None
    paged: list[str] = []
    page_at = None
    undo_at: float | None = None
    if fired is not None:
        labels = {"alertname": alert_name, "model": MODEL, "namespace": "reco",
                  "rollback": "auto" if auto_at is not None else "drift",
                  "severity": "critical", "signal": "score_drift", V: version, "team": "ranking"}
        routed = receivers(amtool, root / "generated/alertmanager/alertmanager.yml", labels)
        paged = [r for r in routed if "pager" in r or "authority" in r]
        page_at = fired + 0.5  # group_wait 30s
        if f"{MODEL}-auto-undo" in routed and case.phase == "completed":
            # release.auto_undo: the undo route's group_wait (10s), then the Job (its guards pass: the bad
            # version is current and the Rollout Healthy) and the previous revision's pods (modelled).
            undo_at = fired + 10 / 60 + UNDO_JOB_MIN + POD_START_MIN
    onset_rel = onset_abs if case.onset is not None else None
    back_at = abort_at if abort_at is not None else undo_at
    back = (back_at - onset_abs) if back_at is not None and onset_rel is not None else None
    degraded = 0
    if onset_rel is not None and case.release:
        until = back_at if back_at is not None else (page_at if page_at is not None else end)
        for m in range(onset_abs, math.ceil(until)):
            degraded += round(PER_MIN * plan.share(m - start))  # every response of the bad version
    out.update({
        "alert": alert_name, "alert_min": None if fired is None or onset_rel is None else fired - onset_abs,
        "abort_min": back, "degraded": int(degraded),
        "paged": paged, "page_min": None if page_at is None or onset_rel is None else page_at - onset_abs,
        "freeze": bool(held["freeze"]),
        "freeze_holds_reroll": (abort_at + 10) in held["freeze"] if abort_at is not None and abort_at + 10 < end
        else bool(held["freeze"]) if fired is not None else None,
    })
    return out


def verdicts(r: dict[str, Any]) -> list[tuple[str, bool]]:
    if r["phase"] in ("canary", "bake"):
        return [("traffic back <= 8 min", r["abort_min"] is not None and r["abort_min"] <= 8),
                ("degraded <= 0.1% of 9M", r["degraded"] <= SEED_DEGRADED / 1000),
                ("freeze holds the re-roll", bool(r["freeze_holds_reroll"]))]
    if r["phase"] == "completed":
        marks = [("page <= 10 min", r["page_min"] is not None and r["page_min"] <= 10 and bool(r["paged"])),
                 ("freeze set", r["freeze"])]
        if r["abort_min"] is not None:  # the opt-in automatic undo ran
            marks.append(("undo: traffic back <= 10 min", r["abort_min"] <= 10))
        return marks
    if r["phase"] == "healthy":
        return [("no rollback, no page", r["alert"] is None and r["abort_min"] is None and not r["paged"])]
    return [("paged", bool(r["paged"]) and r["alert"] == "DriftgateDrift"), ("no freeze", not r["freeze"])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--engine", choices=["prometheus-2", "prometheus-3", "both"], default=None)
    args = parser.parse_args()
    engines = [args.engine] if args.engine and args.engine != "both" else (
        ["prometheus-3"] if args.quick and not args.engine else ["prometheus-2", "prometheus-3"])
    amtool = str(toolset.FLAVOURS[f"alertmanager-{toolset.ALERTMANAGER_RELEASE}"]["amtool"])
    sys.path.insert(0, str(REPO))
    from driftgate import baseline as bl
    from driftgate import pipeline
    from driftgate.render import output

    base = bl.load(REPO / "baselines" / f"{MODEL}.yaml", MODEL)
    fit = base.signal("score_drift")
    q = np.array(fit.probabilities) / sum(fit.probabilities)
    les = list(fit.les)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for part in ("specs", "baselines", "generated"):
            shutil.copytree(REPO / part, root / part)
        horizon_min = 24 * 60
        if args.quick:  # a shorter release.horizon, so that the established version needs less history
            spec = root / "specs" / f"{MODEL}.yaml"
            spec.write_text(with_horizon(spec.read_text(), "5h"))
            output.write(root, pipeline.render_files(root, root / "specs", MODEL), prune=False)
            horizon_min = 300
        plan = read_plan(root)
        cases = [Case("bug at the release start", "canary", 0), Case("bug 30 min into the canary", "canary", 30),
                 Case("bug 90 min into the canary", "canary", 90),
                 Case("bug 30 min into the bake", "bake", plan.hold + 30),
                 Case(f"bug {min(360, horizon_min - 30) / 60:g} h after the release started", "completed",
                      min(360, horizon_min - 30)),  # after completion, inside release.horizon
                 Case("healthy release", "healthy", None),
                 Case("stable drift, no release", "stable-drift", horizon_min + 30, release=False)]
        print(f"seed replay: {MODEL}, {RATE:g} responses/s, Rollout: setWeight {plan.weight}, hold {plan.hold} min, "
              f"bake {plan.bake} min, analysis every {plan.interval} min after {plan.initial_delay} min; "
              f"release.horizon {horizon_min} min")
        ok = True
        for engine in engines:
            promtool = str(toolset.FLAVOURS[engine]["promtool"])
            print(f"\n## rules evaluated by {engine} promtool; Argo Rollouts v1.10.1 decisions; amtool "
                  f"{toolset.ALERTMANAGER_RELEASE} routes\n")
            print(f"{'case':38} {'alert':>7} {'back':>6} {'degraded':>9} {'page':>6}  paged / freeze / verdict")
            for case in cases:
                t0 = time.monotonic()
                r = replay(case, plan, root, promtool, amtool, q, les)
                marks = verdicts(r)
                ok &= all(v for _, v in marks)

                def fmt(x: Any) -> str:
                    return "-" if x is None else f"{x:g}" if float(x).is_integer() else f"{x:.1f}"

                print(f"{case.name:38} {fmt(r['alert_min']):>7} {fmt(r['abort_min']):>6} {r['degraded']:>9,} "
                      f"{fmt(r['page_min']):>6}  {','.join(r['paged']) or 'nobody'} / "
                      f"freeze {'set' if r['freeze'] else 'not set'}"
                      f"{' (held the re-roll)' if r['freeze_holds_reroll'] else ''} / "
                      + ", ".join(f"{n}: {'PASS' if v else 'FAIL'}" for n, v in marks)
                      + f"  ({time.monotonic() - t0:.0f} s)")
        print("\nminutes from onset: alert = DriftgateAutoRollback/DriftgateDrift firing; back = Argo aborted, "
              "traffic on the previous version (after completion: the opt-in automatic undo, release.auto_undo: "
              f"routed by amtool, group_wait 10s, then the Job and the previous pods, modelled as "
              f"{UNDO_JOB_MIN * 60:g} s + {POD_START_MIN * 60:g} s); page = PagerDuty receivers notified "
              "(group_wait 30s). degraded = responses served by the bad version from the onset until traffic "
              "is back (without the undo, until the page).")
        print(f"\noverall: {'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
