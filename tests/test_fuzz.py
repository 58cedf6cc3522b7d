"""Property-based fuzzing of every user string that reaches a rendered file.

Names, label values, descriptions, contacts, channels and URLs with quotes, backslashes, braces,
``${``, ``%{``, ``{{``, newlines, control characters, unpaired surrogates, unicode and very long
strings go through the real spec loader and every renderer. Each value is either

* **rejected at validation** with a :class:`SpecError` whose problems all sit on that key path, or
* **rendered so that it parses back exactly**: every YAML file parses, with the same structure (keys,
  list lengths, types) as a render of a plain value, so no string added a key, a rule or an object;
  the Terraform files parse with python-hcl2, and the ``kubernetes_manifest`` values decode (HCL
  escapes, ``$${`` and ``%%{``) to exactly the YAML objects; ``promtool check rules`` and ``amtool
  check-config`` accept the rule file and the Alertmanager configuration; every raw-metric selector
  in the rules carries exactly the intended matchers (PromQL strings decoded as Go strings); and
  the value itself appears where it should (annotations, routes, matchers).

Hypothesis runs derandomized (the examples are a fixed function of this file), without a database,
in about a minute.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftgate import baseline as bl
from driftgate.errors import SpecError
from driftgate.render.context import build
from driftgate.render.env import md
from driftgate.render.targets import pad_lists, render_all
from driftgate.render.verify import verify
from driftgate.spec.load import load_specs
from driftgate.spec.yamlload import format_path
from tests.conftest import ALERTMANAGER_FLAVOURS, PROMETHEUS_FLAVOURS, tool
from tests.test_corpus import BASE, make_pristine


def fuzz_settings(examples: int) -> settings:
    return settings(derandomize=True, database=None, deadline=None, print_blob=False, max_examples=examples,
                    suppress_health_check=list(HealthCheck))
RAW = ("demo_request_errors_total", "demo_requests_total")  # the raw counters the rules select
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # parsing the outputs (the renderers use safe_load)

# --------------------------------------------------------------------------------------------
# Values

FRAGMENTS = ['"', "'", "\\", "\\\\", '\\"', "{", "}", "${", "%{", "{{", "}}", "{{ .Foo }}", "$", "%", "\n",
             "\r\n", "\t", "#", ": ", "- ", "---", "&a", "*a", "!!python/object", "|", ">", "@", "`", "[", "]",
             ",", "=~", '",x="', '"}', "}[5m]) or vector(1) #", "é", "ß", "😀", "\u202e", "\u200b", "\ufeff",
             "\u2028", "\x00", "\x07", "\x85", "\x9b", "\ud800", "\ufffe", "a", " ", "demo", "<script>", "&lt;"]
TEXT = st.one_of(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=10).map("".join),
    st.text(min_size=495, max_size=505),  # around the 500-character limit of free text
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=40).map("".join),
)
NAME = st.one_of(st.from_regex(r"[a-z0-9][-a-z0-9]{0,70}", fullmatch=True), TEXT)
CHANNEL = st.one_of(st.from_regex(r"[#@][a-z0-9][-a-z0-9._]{0,85}", fullmatch=True), TEXT.map(lambda s: "#" + s))
URL = st.one_of(st.from_regex(r"https?://[A-Za-z0-9.-]{1,30}(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]{0,30})?",
                              fullmatch=True),
                st.tuples(st.sampled_from(["http://gate/", "https://x.example/"]), TEXT).map("".join))

FIELDS: dict[str, tuple[tuple[str | int, ...], Any, int]] = {
    # name: (key path in the spec, strategy, examples)
    "description": (("signals", 0, "description"), TEXT, 20),
    "authority-name": (("rollback_authority", "name"), TEXT, 25),
    "authority-contact": (("rollback_authority", "contact"), TEXT, 15),
    "selector-value": (("prometheus", "selector", "job"), TEXT, 25),
    "signal-label-value": (("signals", 0, "labels", "route"), TEXT, 20),
    "slack-channel": (("team", "slack_channel"), CHANNEL, 20),
    "runbook-url": (("runbook_base_url",), URL, 20),
    "webhook-url": (("freeze", "webhook", "url"), URL, 20),
    "model": (("model",), NAME, 25),
    "namespace": (("namespace",), NAME, 20),
}


def fuzz_spec() -> dict[str, Any]:
    """The corpus base spec cut to one signal (fast to render), with a signal label and a description."""
    doc = yaml.safe_load((BASE / "specs/demo.yaml").read_text(encoding="utf-8"))
    (ratio,) = [s for s in doc["signals"] if s["name"] == "error_ratio"]
    doc["signals"] = [{**ratio, "labels": {"route": "home"}, "description": "Errors per request."}]
    return dict(doc)


def set_path(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


# --------------------------------------------------------------------------------------------
# Decoding what the renderers wrote


def go_unquote(text: str) -> str:
    """A PromQL double-quoted string literal (Go syntax, quotes included) as its value."""
    assert text[0] == text[-1] == '"', text
    body, out, i = text[1:-1], [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "\\": "\\", '"': '"',
              "'": "'"}
    while i < len(body):
        c = body[i]
        assert c != "\n", "a raw newline inside a PromQL string"
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = body[i + 1]
        if n in simple:
            out.append(simple[n])
            i += 2
        elif n in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[n]
            out.append(chr(int(body[i + 2:i + 2 + width], 16)))
            i += 2 + width
        else:
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
    return "".join(out)


_SELECTOR = re.compile(r"(?<![A-Za-z0-9_:])(" + "|".join(RAW) + r")\{")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*("(?:[^"\\]|\\.)*")\s*(,|\})')


def raw_selectors(expr: str) -> list[dict[str, str]]:
    """The matchers of every raw-counter selector in a PromQL expression."""
    found = []
    for m in _SELECTOR.finditer(expr):
        pos, matchers = m.end(), {}
        while True:
            mm = _MATCHER.match(expr, pos)
            assert mm is not None, f"cannot read a matcher at {expr[pos:pos + 60]!r}"
            assert mm.group(2) == "=", "only equality matchers are rendered"
            label = mm.group(1)
            assert label not in matchers, f"matcher {label} twice"
            matchers[label] = go_unquote(mm.group(3))
            pos = mm.end()
            if mm.group(4) == "}":
                break
        found.append(matchers)
    return found


def hcl_unquote(text: str) -> str:
    """An HCL quoted template literal as its value; raises on what Terraform would interpolate or reject."""
    assert text[0] == text[-1] == '"', text
    body, out, i = text[1:-1], [], 0
    simple = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(body):
        if body.startswith(("$${", "%%{"), i):
            out.append(body[i + 1:i + 3])
            i += 3
        elif body.startswith(("${", "%{"), i):
            raise AssertionError(f"an unescaped template sequence in {text!r}")
        elif body[i] == "\\":
            n = body[i + 1]
            if n in simple:
                out.append(simple[n])
                i += 2
            elif n in "uU":
                width = 4 if n == "u" else 8
                code = int(body[i + 2:i + 2 + width], 16)
                assert not 0xD800 <= code <= 0xDFFF, f"HCL rejects the surrogate escape in {text!r}"
                out.append(chr(code))
                i += 2 + width
            else:
                raise AssertionError(f"an escape HCL does not have: \\{n} in {text!r}")
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def hcl_value(value: Any) -> Any:
    if isinstance(value, str):
        return hcl_unquote(value) if value.startswith('"') else value
    if isinstance(value, dict):
        return {hcl_value(k): hcl_value(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [hcl_value(v) for v in value]
    return value


def shape(value: Any, rename: dict[str, str] | None = None) -> Any:
    """The structure of a parsed document: keys, list lengths and scalar types, not the values."""
    if isinstance(value, dict):
        return {_renamed(k, rename): shape(v, rename) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v, rename) for v in value]
    return type(value).__name__


def _renamed(key: str, rename: dict[str, str] | None) -> str:
    for old, new in (rename or {}).items():
        key = key.replace(old, new)
    return key


# --------------------------------------------------------------------------------------------
# Rendering and checking


@dataclasses.dataclass
class Rendered:
    files: dict[str, str]
    yaml: dict[str, list[Any]]
    hcl: dict[str, Any]


def render(work: Path, doc: dict[str, Any], baseline: bl.Baseline) -> Rendered | SpecError:
    spec_file = work / "specs/demo.yaml"
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10**6), encoding="utf-8")
    try:
        (spec,) = load_specs(work, work / "specs", check_exports=False)
    except SpecError as exc:
        return exc
    files = render_all([build(spec, dataclasses.replace(baseline, model=spec.name), None)])
    verify({rel: t for rel, t in files.items() if not rel.endswith(".tf")})  # the .tf files are parsed below
    texts = {rel: t for rel, t in files.items() if isinstance(t, str)}
    parsed = {rel: [d for d in yaml.load_all(t, Loader=Loader) if d is not None]
              for rel, t in texts.items() if rel.endswith((".yaml", ".yml"))}
    tf = {rel: hcl2.loads(t) for rel, t in texts.items() if rel.endswith(".tf")}
    return Rendered(texts, parsed, tf)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bl.Baseline, Rendered]:
    pristine = make_pristine(tmp_path_factory)
    baseline = bl.load(pristine / "baselines/demo.yaml", "baselines/demo.yaml")
    work = tmp_path_factory.mktemp("fuzz")
    reference = render(work, fuzz_spec(), baseline)
    assert isinstance(reference, Rendered), reference
    return work, baseline, reference


def check_tools(r: Rendered, work: Path) -> None:
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(r.files[_rules_file(r)], encoding="utf-8")
        for flavour in PROMETHEUS_FLAVOURS:  # Prometheus 2.x and 3.x
            proc = subprocess.run([tool("promtool", flavour), "check", "rules", str(rules)], capture_output=True,
                                  text=True, timeout=60)
            assert proc.returncode == 0, flavour + ": " + proc.stdout + proc.stderr
        am = Path(tmp) / "alertmanager.yml"
        am.write_text(r.files["generated/alertmanager/alertmanager.yml"], encoding="utf-8")
        for flavour in ALERTMANAGER_FLAVOURS:  # the old and the new matcher parser
            proc = subprocess.run([tool("amtool", flavour), "check-config", str(am)], capture_output=True, text=True,
                                  timeout=60)
            assert proc.returncode == 0, flavour + ": " + proc.stdout + proc.stderr


def check_structure(r: Rendered, ref: Rendered, rename: dict[str, str]) -> None:
    """Same files, same YAML structure, every kubernetes_manifest value equal to its YAML object."""
    assert sorted(r.files) == sorted(_renamed(rel, rename) for rel in ref.files)
    for rel, docs in ref.yaml.items():
        mine = r.yaml[_renamed(rel, rename)]
        assert shape(mine) == shape(docs), f"{rel}: the structure changed"
    for rel, doc in ref.hcl.items():
        # Terraform resource names are the model name with '-' written '_'.
        tf_rename = {old: new.replace("-", "_") for old, new in rename.items()}
        assert shape(r.hcl[_renamed(rel, rename)]) == shape(doc, tf_rename), f"{rel}: the structure changed"
    manifests = [m for block in hcl_value(r.hcl[_renamed("generated/terraform/kubernetes_manifest/demo.tf", rename)])
                 ["resource"] for m in block["kubernetes_manifest"].values()]
    objects = [pad_lists(d) for rel in sorted(r.yaml) if rel.startswith(("generated/argo/", "generated/prometheus/",
                                                                         "generated/alertmanager/"))
               and not rel.endswith(("alertmanager.yml", ".rules.yaml", ".test.yaml", "/kustomization.yaml"))
               for d in r.yaml[rel]]
    by_kind = sorted(objects, key=lambda o: (o["kind"], o["metadata"]["name"]))
    assert sorted((m["manifest"] for m in manifests), key=lambda o: (o["kind"], o["metadata"]["name"])) == by_kind
    argo_tf = hcl_value(r.hcl[_renamed("generated/terraform/argo_rollouts/demo.tf", rename)])
    assert len(argo_tf["resource"]) == 2


def _rules_file(r: Rendered) -> str:
    (rel,) = [rel for rel in r.files if rel.startswith("generated/prometheus/rules/")]
    return rel


def rules_of(r: Rendered) -> list[dict[str, Any]]:
    (doc,) = r.yaml[_rules_file(r)]
    return [rule for group in doc["groups"] for rule in group["rules"]]


def check_values(r: Rendered, doc: dict[str, Any]) -> None:
    """Every value appears exactly where it should."""
    model, ns = doc["model"], doc["namespace"]
    sel = {**doc["prometheus"]["selector"], **doc["signals"][0]["labels"]}
    selectors = [m for rule in rules_of(r) for m in raw_selectors(rule["expr"])]
    assert selectors and all(m == sel for m in selectors), (selectors, sel)
    for rule in rules_of(r):
        if "record" in rule:
            assert rule["labels"]["model"] == model
        else:
            assert rule["labels"].get("namespace", ns) == ns
            url = rule["annotations"]["runbook_url"]
            assert url.startswith(f"{doc['runbook_base_url'].rstrip('/')}/{model}.md#"), url
    authority = doc["rollback_authority"]["name"]
    manual = [rule for rule in rules_of(r) if rule.get("alert") == "DriftgateManualReview"]
    assert manual and all(f"{authority} decides: promote or abort" in rule["annotations"]["description"]
                          for rule in manual)
    argo = r.yaml[f"generated/argo/{model}.yaml"]
    assert {t["metadata"]["annotations"]["driftgate.io/rollback-authority"] for t in argo} == {authority}
    assert {t["metadata"]["namespace"] for t in argo} == {ns}
    (amc,) = r.yaml[f"generated/alertmanager/{model}.yaml"]
    receivers = {rc["name"]: rc for rc in amc["spec"]["receivers"]}
    assert receivers[f"{model}-team"]["slackConfigs"][0]["channel"] == doc["team"]["slack_channel"]
    assert f"rollback decision by {authority}. Undo" in receivers[f"{model}-rollback-authority"]["pagerdutyConfigs"][0][
        "description"]
    assert receivers[f"{model}-freeze"]["webhookConfigs"][0]["url"] == doc["freeze"]["webhook"]["url"]
    (plain,) = r.yaml["generated/alertmanager/alertmanager.yml"]
    plain_receivers = {rc["name"]: rc for rc in plain["receivers"]}
    assert plain_receivers[f"{model}-team"]["slack_configs"][0]["channel"] == doc["team"]["slack_channel"]
    assert plain_receivers[f"{model}-freeze"]["webhook_configs"][0]["url"] == doc["freeze"]["webhook"]["url"]
    assert plain["route"]["routes"][0]["matchers"][:2] == [f'model="{model}"', f'namespace="{ns}"']
    plan = r.files[f"generated/plans/{model}.md"]
    for text in (doc["signals"][0]["description"], authority, doc["rollback_authority"]["contact"]):
        assert md(text) in plan


@pytest.mark.tools
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_fuzzed_strings_are_rejected_or_render_exactly(field: str,
                                                       setup: tuple[Path, bl.Baseline, Rendered]) -> None:
    work, baseline, reference = setup
    path, strategy, examples = FIELDS[field]
    tally = {"rejected": 0, "rendered": 0}

    @fuzz_settings(examples)
    @given(value=strategy)
    def run(value: str) -> None:
        doc = copy.deepcopy(fuzz_spec())
        set_path(doc, path, value)
        result = render(work, doc, baseline)
        if isinstance(result, SpecError):
            errors = [p for p in result.problems if p.level == "error"]
            assert errors, result
            for p in errors:
                assert p.path == format_path(path), f"a problem elsewhere than {format_path(path)}: {p.format()}"
                assert "\n" not in p.format() and p.message, p.format()
            tally["rejected"] += 1
            return
        rename = {"demo": doc["model"]} if field == "model" else {}
        check_structure(result, reference, rename)
        check_values(result, doc)
        check_tools(result, work)
        tally["rendered"] += 1

    run()
    # Both outcomes must have been exercised (a strategy that is always rejected tests nothing).
    assert tally["rendered"] > 0 and tally["rejected"] > 0, tally


def test_the_reference_render_is_checked(setup: tuple[Path, bl.Baseline, Rendered]) -> None:
    _, _, reference = setup
    check_structure(reference, reference, {})
    check_values(reference, fuzz_spec())


@pytest.mark.parametrize(("value", "expected"), [
    ('home"} or vector(1) #', 'home"} or vector(1) #'),
    ("a\\", "a\\"),
    ('\\"', '\\"'),
    ("tab\there", "tab\there"),
    ("😀 é ß", "😀 é ß"),
])
def test_selector_values_cannot_add_a_matcher(value: str, expected: str,
                                              setup: tuple[Path, bl.Baseline, Rendered]) -> None:
    work, baseline, _ = setup
    doc = fuzz_spec()
    doc["prometheus"]["selector"]["job"] = value
    result = render(work, doc, baseline)
    assert isinstance(result, Rendered), result
    for rule in rules_of(result):
        for matchers in raw_selectors(rule["expr"]):
            assert matchers == {"job": expected, "namespace": "demo", "route": "home"}


@pytest.mark.parametrize(("field", "value", "message"), [
    (("rollback_authority", "name"), "Lead {{ .Foo }}", "'{{' is not allowed"),
    (("signals", 0, "labels", "route"), "a\nb", "a single line is expected"),
    (("signals", 0, "description"), "x\ud83d", "unpaired UTF-16 surrogates"),
    (("model",), "Demo", "expected a DNS-1123 label"),
    (("model",), "demo\"}", "expected a DNS-1123 label"),
    (("freeze", "webhook", "url"), "http://gate/${x}", "expected an http(s) URL"),
    (("rollback_authority", "name"), "${", "'${' is not allowed"),
    (("signals", 0, "description"), "at 95%{p}", "'%{' is not allowed"),
])
def test_rejections_name_the_key(field: tuple[str | int, ...], value: str, message: str,
                                 setup: tuple[Path, bl.Baseline, Rendered]) -> None:
    work, baseline, _ = setup
    doc = fuzz_spec()
    set_path(doc, field, value)
    result = render(work, doc, baseline)
    assert isinstance(result, SpecError)
    (problem,) = [p for p in result.problems if p.level == "error"]
    assert problem.path == format_path(field) and message in problem.message, problem.format()
