"""The libyaml fast paths change nothing but the time.

**Reading.**
``loads_yaml`` reads printable-ASCII text with libyaml's scanner and parser (about 6x faster on a
baseline; the cold render of a fleet loads one spec and one baseline per model) and falls back to the
pure-Python loader on any error or problem. The property: whenever the fast path gives a result, the
pure-Python loader gives the same data and the same marks and no problem; whenever it gives none, the
result is the pure-Python loader's. Checked on every YAML file of the repository and the corpus, and
on hundreds of mutations of the examples (bytes deleted, duplicated, replaced by YAML's syntax).

**Writing.** The promtool test documents are dumped with libyaml's emitter: byte-identical to the
pure-Python emitter on the examples' documents and on random documents of the same shape whose
strings are made of PromQL's and YAML's special characters.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from driftgate.errors import Problem
from driftgate.spec import yamlload

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted({*REPO.glob("specs/*.yaml"), *REPO.glob("baselines/*.yaml"), *REPO.glob("tests/corpus/**/*.yaml"),
                  *REPO.glob("tests/corpus/**/*.yml")})
SYNTAX = [":", " ", "\n", "-", "[", "]", "{", "}", ",", "'", '"', "#", "&a", "*a", "<<", "!!str ", "?", "|", ">",
          "\t", "\\", "%", "@", "`", "~", "0x1", "1e3", "2026-02-30", "\u00a0", "\x00", "\ufeff", ":x", "x:",
          "- ", ": ", "? ", "--- ", "...", "\n---\n", "\n...\n", ": |", "!", "!x ", "&", "*", "=", "'a''b'", '"\\x"',
          " #", "a #b", "{", "[]", "{}", "null", "~", "yes", "on", "0o7", "0b1", "1_000", ".inf", ".nan", "-.5"]


def full(text: str) -> tuple[Any, Any, list[Problem]]:
    problems: list[Problem] = []
    saved = yamlload._LibyamlReader
    yamlload._LibyamlReader = None  # type: ignore[assignment,misc]
    try:
        data, marks = yamlload.loads_yaml(text, "f.yaml", problems)
    finally:
        yamlload._LibyamlReader = saved  # type: ignore[misc]
    return data, marks.table, problems


def agree(text: str) -> bool:
    """Whether the fast path answered (the property is asserted either way)."""
    fast = yamlload._fast(text, "f.yaml") if yamlload._FAST_TEXT.fullmatch(text) else None
    problems: list[Problem] = []
    data, marks = yamlload.loads_yaml(text, "f.yaml", problems)
    want = full(text)
    assert (data, marks.table, problems) == want, text
    if fast is not None:
        assert fast[0] == want[0] and fast[1].table == want[1] and not want[2], text
    return fast is not None


def test_libyaml_is_there() -> None:
    """The wheels of PyYAML on the package index bundle libyaml: without it the fast path is silently off."""
    assert yamlload._LibyamlReader is not None


def test_every_yaml_file_reads_the_same() -> None:
    answered = sum(agree(p.read_text(encoding="utf-8", errors="replace")) for p in SOURCES)
    assert len(SOURCES) > 20 and answered > 10, (len(SOURCES), answered)


@pytest.mark.parametrize("example", ["specs/reco-ranker.yaml", "baselines/fraud-scorer.yaml"])
def test_mutations_read_the_same(example: str) -> None:
    text = (REPO / example).read_text(encoding="utf-8")
    rng = random.Random(example)
    answered = 0
    for _ in range(400):
        chars = list(text)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(chars))
            what = rng.randrange(3)
            if what == 0:
                del chars[i:i + rng.randint(1, 8)]
            elif what == 1:
                chars[i:i] = chars[i:i + rng.randint(1, 20)]
            else:
                chars[i:i + rng.randint(0, 2)] = list(rng.choice(SYNTAX))
        answered += agree("".join(chars))
    assert answered > 20  # the fast path is exercised, not only the fallback


def test_promtool_test_documents_dump_the_same() -> None:
    import yaml

    from driftgate.render import promtests

    assert promtests.DUMPER is yaml.CSafeDumper
    args: dict[str, Any] = {"sort_keys": False, "width": 1_000_000, "default_flow_style": False}
    shipped = sorted(REPO.glob("generated/prometheus/tests/*.yaml"))
    docs = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in shipped]
    assert docs
    rng = random.Random(7)
    alphabet = [*"abz09_:{}[]()\"'=~|!<>,.-+*/ #&%@`?\\\n", "true", "null", "1e-06", "0x1", ": ", " #", "- "]

    def s() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 15)))

    for _ in range(3000):
        docs.append({"rule_files": [s()], "evaluation_interval": s(), "tests": [
            {"name": s(), "interval": "1m", "input_series": [{"series": s(), "values": s()} for _ in range(2)],
             "promql_expr_test": [{"expr": s(), "eval_time": "10m",
                                   "exp_samples": [{"labels": s(), "value": rng.choice([1, 0.5, -3])}]}]}]})
    for doc in docs:
        assert yaml.dump(doc, Dumper=yaml.CSafeDumper, **args) == yaml.dump(doc, Dumper=yaml.SafeDumper, **args), doc
