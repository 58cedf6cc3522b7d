"""Fleet scale (issue 15): render and check a thousand models, and fit a fleet on Dask.

A fleet of N models is made of copies of the two bundled examples under new names (``reco-ranker-0000``,
``fraud-scorer-0001``, ...: spec, baseline and evidence with the name replaced), in a temporary
repository with the CRD schemas of ``.tools/crds`` when present (strict validation on, as in CI).
Every timing runs the real CLI (``driftgate render``/``check``, a new process: imports included):

* **fresh clone** (the committed tree, no ``.driftgate/`` cache): ``render`` and ``check``, target <= 60 s;
* **nothing changed**, cache warm (written by the last ``render``/``make gen``; ``check`` writes none):
  ``check`` <= 5 s;
* **one change**: one model's spec edited and its baseline refitted (``driftgate fit --model``, the
  example's exports copied for it), then ``render`` and ``check`` <= 5 s each;
* **tampering** is still caught with a warm cache: a generated file edited by hand, deleted, and a
  stray file added: ``check`` exits 1 naming each (PASS/FAIL).

The committed tree the fresh-clone case starts from is made once by a render whose pictures are
copies of the example's with their input key set (drawing 4,000 pictures with matplotlib would take
~30 minutes and measure matplotlib): a real render then finds every picture current, as it does in a
fresh clone of an infra repository that commits ``generated/``. The cost of drawing is reported on
its own (``first render``, on a few models, per picture).

``--fit`` adds the fleet fit: serial vs ``--workers 2`` (a Dask LocalCluster) on copies that each have
the example's exports (needs ``driftgate[fleet]``).

``--rules`` adds the rules' cost inside a real Prometheus 2.x and 3.x (:mod:`bench.rule_cost`: samples
per evaluation before/after at 3, 30 and 100 pods, evaluation time, recorded series, window growth).

Usage: ``python bench/scale.py [--models 1000] [--quick] [--fit] [--rules] [--all]``; ``--quick`` is 100
models, ``--all`` is ``--fit --rules``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = ("reco-ranker", "fraud-scorer")


def make_fleet(root: Path, n: int) -> list[str]:
    """``n`` copies of the examples under new names in ``root`` (specs, baselines, evidence)."""
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "baselines").mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        src = EXAMPLES[i % 2]
        name = f"{src}-{i:04d}"
        names.append(name)
        for rel_src, rel_dst in ((f"specs/{src}.yaml", f"specs/{name}.yaml"),
                                 (f"baselines/{src}.yaml", f"baselines/{name}.yaml"),
                                 (f"baselines/{src}.evidence.json", f"baselines/{name}.evidence.json")):
            (root / rel_dst).write_text((REPO / rel_src).read_text(encoding="utf-8").replace(src, name),
                                        encoding="utf-8")
    return names


def _rekey(png: bytes, key: str) -> bytes:
    """``png`` with its ``driftgate-inputs`` text chunk set to ``key`` (pixels and their digest kept)."""
    from driftgate.render import plots

    out, pos = [png[:8]], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        if kind == b"tEXt" and body.startswith(plots.INPUTS_KEY.encode("latin-1") + b"\0"):
            body = plots.INPUTS_KEY.encode("latin-1") + b"\0" + key.encode("ascii")
            out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
        else:
            out.append(png[pos:pos + 12 + length])
        pos += 12 + length
    return b"".join(out)


@contextmanager
def placeholder_pictures() -> Iterator[None]:
    """While active, a picture is a copy of an example picture carrying its own key (see the docstring)."""
    from driftgate.render import plots

    template = next((REPO / "generated" / "plans" / "reco-ranker").glob("*.png")).read_bytes()
    original = plots.Picture.draw
    plots.Picture.draw = lambda self: _rekey(template, self.key)  # type: ignore[method-assign]
    try:
        yield
    finally:
        plots.Picture.draw = original  # type: ignore[method-assign]


def cli(root: Path, *args: str) -> tuple[float, int, str]:
    """Seconds, exit code and output of ``driftgate <args> --root <root>`` in a new process."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "driftgate", *args, "--root", str(root)], capture_output=True,
                          text=True, check=False, env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.monotonic() - start, proc.returncode, proc.stdout + proc.stderr


def _crds_args() -> list[str]:
    crds = REPO / ".tools" / "crds"
    return ["--crds", str(crds)] if (crds / "SOURCES.md").is_file() else []


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def copy_exports(exports: Path, name: str, root: Path) -> None:
    """The example's exports for a copy ``name``: its label values renamed like its spec."""
    src = name.rsplit("-", 1)[0]
    for path in sorted((exports / src).iterdir()):
        if path.is_file():
            out = root / "exports" / name / path.name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(path.read_bytes().replace(src.encode(), name.encode()))


def _example_exports() -> Path:
    exports = REPO / "exports"
    if not (exports / ".stamp").is_file():
        subprocess.run([sys.executable, str(REPO / "scripts" / "make_example_exports.py"), "--out", str(exports)],
                       check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return exports


def render_and_check(n: int, results: list[tuple[str, bool]]) -> None:
    sys.path.insert(0, str(REPO))
    from driftgate import pipeline

    crds = _crds_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = make_fleet(root, n)
        t0 = time.monotonic()
        with placeholder_pictures():
            pipeline.render(root, root / "specs", crds=Path(crds[1]) if crds else None, use_cache=False)
        shutil.rmtree(root / ".driftgate", ignore_errors=True)
        files = sum(1 for p in (root / "generated").rglob("*") if p.is_file())
        print(f"fleet: {n} models ({files} generated files), CRD validation {'on' if crds else 'off'}; "
              f"committed tree made in {time.monotonic() - t0:.0f} s (placeholder pictures)\n")

        seconds, code, out = cli(root, "render", *crds)
        results.append((f"fresh clone: render {seconds:.1f} s <= 60 s", seconds <= 60 and code == 0))
        print(f"fresh clone (no cache)       render {seconds:6.1f} s  exit {code}  {_last(out)}")
        shutil.rmtree(root / ".driftgate", ignore_errors=True)
        seconds, code, out = cli(root, "check", *crds)
        results.append((f"fresh clone: check {seconds:.1f} s <= 60 s", seconds <= 60 and code == 0))
        print(f"fresh clone (no cache)       check  {seconds:6.1f} s  exit {code}  {_last(out)}")
        seconds, code, out = cli(root, "render", *crds)  # `make gen`: nothing changes, the cache is written
        print(f"make gen, nothing changed    render {seconds:6.1f} s  exit {code}  {_last(out)}")
        seconds, code, out = cli(root, "check", *crds)
        results.append((f"nothing changed: check {seconds:.1f} s <= 5 s", seconds <= 5 and code == 0))
        print(f"nothing changed (warm)       check  {seconds:6.1f} s  exit {code}  {_last(out)}")

        # One change: a spec edited (a signal's description and min_events) and its baseline refitted.
        one = names[0]
        exports = _example_exports()
        copy_exports(exports, one, root)
        spec = root / "specs" / f"{one}.yaml"
        spec.write_text(spec.read_text().replace("    min_events: 1000\n", "    min_events: 1200\n", 1))
        t_fit, code_fit, out_fit = cli(root, "fit", "--model", one)
        seconds, code, out = cli(root, "render", *crds)
        results.append((f"one change: render {seconds:.1f} s <= 5 s", seconds <= 5 and code == 0))
        print(f"one spec edited, refitted    fit    {t_fit:6.1f} s  exit {code_fit}  {_last(out_fit)}")
        print(f"                             render {seconds:6.1f} s  exit {code}  {_last(out)}")
        seconds, code, out = cli(root, "check", *crds)
        results.append((f"one change: check {seconds:.1f} s <= 5 s", seconds <= 5 and code == 0))
        print(f"                             check  {seconds:6.1f} s  exit {code}  {_last(out)}")

        # Tampering, with the cache warm: each is reported by check.
        victim = root / "generated" / "prometheus" / f"{names[1]}.yaml"
        victim.write_text(victim.read_text() + "# edited by hand\n")
        seconds, code, out = cli(root, "check", *crds)
        ok = code == 1 and f"generated/prometheus/{names[1]}.yaml: stale" in out
        results.append(("hand-edited file reported stale", ok))
        print(f"a file edited by hand        check  {seconds:6.1f} s  exit {code}  {_mark(ok)}")
        cli(root, "render", *crds)
        gone = root / "generated" / "argo" / f"{names[2]}.yaml"
        gone.unlink()
        seconds, code, out = cli(root, "check", *crds)
        ok = code == 1 and f"generated/argo/{names[2]}.yaml: missing" in out
        results.append(("deleted file reported missing", ok))
        print(f"a file deleted               check  {seconds:6.1f} s  exit {code}  {_mark(ok)}")
        cli(root, "render", *crds)
        stray = root / "generated" / "argo" / "stray.yaml"
        stray.write_text("# Generated by driftgate from nothing. DO NOT EDIT.\n")
        seconds, code, out = cli(root, "check", *crds)
        ok = code == 1 and "generated/argo/stray.yaml: orphaned" in out
        results.append(("added file reported orphaned", ok))
        print(f"a stray file added           check  {seconds:6.1f} s  exit {code}  {_mark(ok)}")


def first_render(results: list[tuple[str, bool]], n: int = 4) -> None:
    """Drawing cost: a render of a few models with nothing generated yet (every picture drawn)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_fleet(root, n)
        seconds, code, _ = cli(root, "render", *_crds_args())
        pictures = sum(1 for _ in (root / "generated").rglob("*.png"))
        print(f"\nfirst render of {n} models (every picture drawn): {seconds:.1f} s, {pictures} pictures, "
              f"{seconds / max(1, pictures):.2f} s per picture (exit {code}); later renders reuse them")


def _last(out: str) -> str:
    lines = [line for line in out.strip().splitlines() if "warning:" not in line]
    return lines[-1][:90] if lines else ""


def fleet_fit(results: list[tuple[str, bool]], n: int = 24) -> None:
    """Serial fit vs a Dask LocalCluster of 2 workers, byte-identical baselines."""
    exports = _example_exports()
    times: dict[str, float] = {}
    trees: dict[str, dict[str, bytes]] = {}
    for mode, args in (("serial", []), ("dask --workers 2", ["--workers", "2"])):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            names = make_fleet(root, n)
            for name in names:
                copy_exports(exports, name, root)
            seconds, code, out = cli(root, "fit", "--force", *args)
            times[mode] = seconds
            trees[mode] = {p.name: p.read_bytes() for p in sorted((root / "baselines").iterdir())}
            print(f"fit {n} models, {mode:18} {seconds:6.1f} s ({seconds / n:.2f} s per model), exit {code}"
                  + ("" if code == 0 else f": {_last(out)}"))
    same = trees["serial"] == trees["dask --workers 2"]
    results.append(("fleet fit: Dask baselines byte-identical to serial", same))
    speedup = times["serial"] / times["dask --workers 2"]
    print(f"speed-up on 2 cores: {speedup:.2f}x (process start, cluster start and imports included)")
    results.append((f"fleet fit: Dask faster than serial ({speedup:.2f}x)", speedup > 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100 models")
    parser.add_argument("--fit", action="store_true", help="also the fleet fit on Dask")
    parser.add_argument("--rules", action="store_true",
                        help="also the rules' cost in a real Prometheus 2.x and 3.x (bench/rule_cost.py)")
    parser.add_argument("--all", action="store_true", help="--fit and --rules: every target of issue 15")
    args = parser.parse_args()
    n = 100 if args.quick else args.models
    results: list[tuple[str, bool]] = []
    render_and_check(n, results)
    first_render(results)
    if args.fit or args.all:
        print()
        fleet_fit(results)
    if args.rules or args.all:
        sys.path.insert(0, str(REPO / "bench"))
        import rule_cost

        print()
        results += rule_cost.run([3, 30, 100], ["prometheus-2", "prometheus-3"])
    print()
    for name, ok in results:
        print(f"{_mark(ok)}  {name}")
    print(f"\noverall: {_mark(all(ok for _, ok in results))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
