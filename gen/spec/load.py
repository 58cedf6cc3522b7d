"""Read ``specs/*.yaml`` into validated :class:`driftgate.model.ModelSpec` objects.

All problems of all specs are collected before anything fails; unknown keys are errors; every
problem names ``file:line:col``, the key path, what was expected and what was found. The full
format is documented in ``docs/spec.md``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path, PurePosixPath
from typing import Any

from driftgate import fsio
from driftgate import model as m
from driftgate.errors import Problem, SpecError
from driftgate.spec import names
from driftgate.spec.reader import Reader, hidden, show
from driftgate.spec.yamlload import KeyPath, format_path, load_yaml
from driftgate.validate.durations import parse_prom_duration, prom_duration

SIGNAL_DEFAULTS: dict[m.SignalKind, tuple[m.Statistic, m.Direction]] = {
    m.SignalKind.DISTRIBUTION_DRIFT: (m.Statistic.PSI, m.Direction.ABOVE),
    m.SignalKind.LATENCY_QUANTILE: (m.Statistic.QUANTILE, m.Direction.ABOVE),
    m.SignalKind.ERROR_RATIO: (m.Statistic.RATIO, m.Direction.ABOVE),
    m.SignalKind.KPI_RATIO: (m.Statistic.RATIO, m.Direction.BELOW),
}
DRIFT_STATISTICS = [m.Statistic.PSI.value, m.Statistic.JS.value, m.Statistic.TVD.value]

TOP_KEYS = {"model", "namespace", "rollout", "team", "rollback_authority", "prometheus", "budget",
            "history", "freeze", "analysis", "release", "runbook_base_url", "signals", "object_labels",
            "object_annotations"}
TOP_REQUIRED = {"model", "namespace", "rollout", "team", "rollback_authority", "prometheus", "budget",
                "history", "freeze", "signals"}
COMMON_SIGNAL_KEYS = {"name", "kind", "labels", "windows", "direction", "tier", "min_events", "no_data",
                      "threshold", "description"}
KIND_KEYS: dict[m.SignalKind, set[str]] = {
    m.SignalKind.DISTRIBUTION_DRIFT: {"metric", "statistic", "compare_with"},
    m.SignalKind.LATENCY_QUANTILE: {"metric", "quantile", "compare_with"},
    m.SignalKind.ERROR_RATIO: {"numerator", "denominator", "numerator_labels", "denominator_labels", "compare_with"},
    m.SignalKind.KPI_RATIO: {"numerator", "denominator", "numerator_labels", "denominator_labels", "compare_with"},
}
KIND_REQUIRED: dict[m.SignalKind, set[str]] = {
    m.SignalKind.DISTRIBUTION_DRIFT: {"metric"},
    m.SignalKind.LATENCY_QUANTILE: {"metric", "quantile"},
    m.SignalKind.ERROR_RATIO: {"numerator", "denominator"},
    m.SignalKind.KPI_RATIO: {"numerator", "denominator"},
}
MAX_SIGNALS = 20
# What a signal compares each window with: the fitted baseline (distribution, ratio or quantile); a drift
# signal also the whole model's distribution over the same window one week earlier (removes hour-of-week
# seasonality); any signal the established versions over the same window (a young version against stable).
COMPARE_WITH = ("baseline", "last_week", "stable")
COMPARE_WITH_NOT_DRIFT = ("baseline", "stable")


def load_specs(root: Path, spec_dir: Path, only: str | None = None,
               check_exports: bool = True, warnings: list[Problem] | None = None) -> list[m.ModelSpec]:
    """Load every ``*.yaml`` spec under ``spec_dir``; raise :class:`SpecError` listing all problems."""
    problems: list[Problem] = []
    files = listed_spec_files(root, spec_dir, problems)
    specs: list[m.ModelSpec] = []
    seen: dict[str, str] = {}
    for path in files:
        # With ``only``, the other models' exports are not needed (``fit --model``): checked for it alone.
        spec = load_spec(root, path, problems, check_exports and only is None)
        if spec is not None and check_exports and only is not None and spec.name == only:
            problems[:] = [p for p in problems if p.file != spec.spec_path]  # loaded again, exports checked
            spec = load_spec(root, path, problems, True)
        if spec is None:
            continue
        if not claim_name(spec, seen, problems):
            continue
        specs.append(spec)
    if any(p.level == "error" for p in problems):
        raise SpecError(problems)
    if warnings is not None:
        warnings.extend(p for p in problems if p.level != "error" and (only is None or only in p.file))
    if only is not None:
        specs = [s for s in specs if s.name == only]
        if not specs:
            raise SpecError([Problem(_display(root, spec_dir), 0, 0, "",
                                     f"no spec defines model '{only}'; known: {', '.join(sorted(seen))}")])
    return specs


def listed_spec_files(root: Path, spec_dir: Path, problems: list[Problem]) -> list[Path]:
    """:func:`spec_files`, or :class:`SpecError` when ``spec_dir`` is not a folder or holds no spec."""
    if not spec_dir.is_dir():
        what = "is not a directory" if spec_dir.exists() else "does not exist"
        raise SpecError([Problem(_display(root, spec_dir), 0, 0, "", f"spec directory {what}")])
    files = spec_files(root, spec_dir, problems)
    if not files and not problems:
        raise SpecError([Problem(_display(root, spec_dir), 0, 0, "", "no *.yaml specs found")])
    return files


def claim_name(spec: m.ModelSpec, seen: dict[str, str], problems: list[Problem]) -> bool:
    """Record ``spec``'s model name in ``seen`` (name -> spec file); False, with a problem, if it is taken."""
    if spec.name in seen:
        problems.append(Problem(spec.spec_path, 1, 1, "model",
                                f"model '{spec.name}' is already defined in {seen[spec.name]}"))
        return False
    seen[spec.name] = spec.spec_path
    return True


def spec_display(root: Path, path: Path) -> str:
    """How a spec file is named in messages and in ``spec_path`` (relative to the root when inside it)."""
    return _display(root, path)


def spec_files(root: Path, spec_dir: Path, problems: list[Problem]) -> list[Path]:
    """The spec files of ``spec_dir``: ``*.yaml`` and ``*.yml``, sorted by name.

    Hidden files (``.#demo.yaml``, an editor's lock symlink; ``.demo.yaml``) are not specs and are skipped.
    A name whose extension differs only in case (``demo.YAML``) is an error rather than silently skipped:
    the model it defines would otherwise have no rules.
    """
    files = []
    try:
        entries = sorted(spec_dir.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        problems.append(Problem(_display(root, spec_dir), 0, 0, "", f"cannot list the spec directory: "
                                                                    f"{exc.strerror or exc}"))
        return []
    for path in entries:
        if path.name.startswith("."):
            continue
        suffix = path.suffix
        if suffix in (".yaml", ".yml"):
            files.append(path)
        elif suffix.lower() in (".yaml", ".yml"):
            problems.append(Problem(_display(root, path), 0, 0, "",
                                    f"a spec file's name must end in .yaml or .yml in lower case, got "
                                    f"'{suffix}'; rename it (driftgate would otherwise skip it)"))
    return files


def load_spec(root: Path, path: Path, problems: list[Problem],
              check_exports: bool = True) -> m.ModelSpec | None:
    display = _display(root, path)
    data, marks = load_yaml(path, display, problems, root)
    if data is None:
        return None
    r = Reader(marks)
    nulls = _nulls(r, data)
    spec = _build(r, root, display, data, check_exports)
    # A null is reported as null (above), not again as a missing required key or a wrong list item.
    ours = {(format_path((*parent, key)) if key is not None else format_path(parent)) for parent, key in nulls}
    missing = {(format_path(parent), f"missing required key '{key}'") for parent, key in nulls if key is not None}
    r.problems = [p for p in r.problems if (p.path, p.message) not in missing
                  and not (p.path in ours and not p.message.startswith("expected a value, got null"))]
    problems.extend(r.problems)
    return spec if not any(p.level == "error" for p in r.problems) else None


# Keys whose null is documented as a value ("none"), not an omission.
NULL_ALLOWED: frozenset[KeyPath] = frozenset({("freeze", "lifted_until")})


def _nulls(r: Reader, data: Any) -> list[tuple[KeyPath, str | None]]:
    """Report every present-but-null value (``quantile:``, ``windows: {fast: ~}``) and remove it.

    YAML reads an empty value as null; driftgate never takes null for "use the default" (a signal would
    silently lose its quantile, a window its length): it is an error naming the key, except the keys of
    :data:`NULL_ALLOWED`, where null is documented. Returns the (parent path, key) pairs removed, and
    (path of the item, None) for a null list item (kept, so that the other items keep their index).
    """
    removed: list[tuple[KeyPath, str | None]] = []

    def walk(node: Any, path: KeyPath) -> None:
        if isinstance(node, dict):
            for key in list(node):
                child = (*path, key)
                if node[key] is None and child not in NULL_ALLOWED:
                    r.error(child, "expected a value, got null (an empty value or '~'); give a value, or "
                                   "remove the key to use its default")
                    del node[key]
                    removed.append((path, key))
                else:
                    walk(node[key], child)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                if item is None:
                    r.error((*path, i), "expected a value, got null (an empty list item or '~')")
                    removed.append(((*path, i), None))
                else:
                    walk(item, (*path, i))

    walk(data, ())
    return removed


def _display(root: Path, path: Path) -> str:
    """``path`` as messages name it: relative to the repository, never through a symlink's target."""
    try:
        return path.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        pass
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):  # outside, or a symlink loop
        return str(path)


def _build(r: Reader, root: Path, display: str, data: Any, check_exports: bool) -> m.ModelSpec | None:
    top = r.mapping(data, (), TOP_KEYS, TOP_REQUIRED)
    if not top:
        return None
    name = r.string(top, (), "model", pattern=names.MODEL_NAME)
    namespace = r.string(top, (), "namespace", pattern=names.DNS_LABEL)
    rollout = r.string(top, (), "rollout", pattern=names.DNS_LABEL)
    if name and Path(display).stem != name:
        r.warn(("model",), f"the file is named '{Path(display).name}' but defines model '{name}'")
    # A missing section is reported once, as a missing required key, not again as "expected a mapping".
    team = _team(r, top["team"], ("team",)) if "team" in top else None
    authority = _authority(r, top["rollback_authority"], ("rollback_authority",)) \
        if "rollback_authority" in top else None
    prom = _prometheus(r, top["prometheus"], ("prometheus",)) if "prometheus" in top else None
    budget, manual_budget = _budget(r, top["budget"], ("budget",)) if "budget" in top else (None, None)
    min_history, exports, exclude, exclude_file = \
        _history(r, root, top["history"], ("history",), check_exports) if "history" in top else (None, [], [], "")
    freeze = _freeze(r, top["freeze"], ("freeze",)) if "freeze" in top else None
    analysis = _analysis(r, top.get("analysis", {}), ("analysis",))
    release = _release(r, top["release"], ("release",)) if "release" in top else m.Release()
    runbook = r.string(top, (), "runbook_base_url", pattern=names.URL,
                       default="") or f"generated/plans/{name}.md"
    if "runbook_base_url" in top and runbook:
        runbook = runbook.rstrip("/") + f"/{name}.md"
    signals = _signals(r, top["signals"], ("signals",), prom) if "signals" in top else []
    object_labels = _object_metadata(r, top.get("object_labels", {}), ("object_labels",), labels=True)
    object_annotations = _object_metadata(r, top.get("object_annotations", {}), ("object_annotations",),
                                          labels=False)
    if release is not None and signals:
        rollout_seconds = max(s.windows.slow.seconds for s in signals) + release.bake.seconds
        if release.horizon.seconds <= rollout_seconds:
            where: KeyPath = ("release", "horizon") if isinstance(top.get("release"), dict) and \
                "horizon" in top["release"] else ("release",) if "release" in top else ("signals",)
            r.error(where, f"expected release.horizon ({release.horizon.text}) longer than the generated rollout "
                           f"(the longest slow window plus release.bake: {prom_duration(rollout_seconds)}); "
                           "otherwise a version still rolling out counts as established and its breach is paged "
                           "as drift instead of rolled back: set a longer release.horizon or a shorter release.bake")
    if release is not None and release.auto_undo is not None and analysis is not None and analysis.dry_run:
        r.error(("release", "auto_undo"), "expected no automatic undo in shadow mode (analysis.dry_run: true "
                "never acts on a breach); set release.auto_undo once the model leaves shadow mode")
    if any(p.level == "error" for p in r.problems):
        return None
    assert team and authority and prom and budget and manual_budget and min_history and freeze and analysis
    return m.ModelSpec(
        name=name, spec_path=display, namespace=namespace, rollout=rollout, team=team,
        authority=authority, prometheus=prom, budget=budget, manual_budget=manual_budget,
        min_history=min_history, exports=tuple(exports), freeze=freeze, analysis=analysis,
        runbook_base_url=runbook, signals=tuple(signals), release=release or m.Release(),
        object_labels=object_labels, object_annotations=object_annotations,
        exclude=tuple(exclude), exclude_file=exclude_file,
    )


# Kubernetes label and annotation keys: an optional DNS-subdomain prefix and '/', then a name of at
# most 63 characters; label values at most 63 characters of the same alphabet (or empty).
_K8S_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
K8S_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_K8S_NAME}$")
K8S_LABEL_VALUE = re.compile(rf"^({_K8S_NAME})?$")
OWN_KEYS = ("app.kubernetes.io/managed-by", "driftgate.io/")


def _object_metadata(r: Reader, value: Any, path: KeyPath, labels: bool) -> tuple[tuple[str, str], ...]:
    """``object_labels`` / ``object_annotations``: put on every generated Kubernetes object (e.g. the
    ``release: <name>`` a stock kube-prometheus-stack selects PrometheusRules by)."""
    if not isinstance(value, dict):
        r.error(path, f"expected a mapping of {'label' if labels else 'annotation'} keys to values, got {show(value)}")
        return ()
    out = []
    for key in sorted(value, key=str):
        v, where = value[key], (*path, str(key))
        if not isinstance(key, str) or not K8S_KEY.fullmatch(key) or len(key.split("/")[0]) > 253:
            r.error(where, f"expected a Kubernetes {'label' if labels else 'annotation'} key ([prefix/]name, name "
                           f"at most 63 of [-A-Za-z0-9_.]), got {show(key)}")
            continue
        if key.startswith(OWN_KEYS):
            r.error(where, f"'{key}' is set by driftgate on every object it generates")
            continue
        if not isinstance(v, str):
            r.error(where, f"expected a string value (quote numbers and booleans), got {show(v)}")
            continue
        if labels and not K8S_LABEL_VALUE.fullmatch(v):
            r.error(where, f"expected a Kubernetes label value (at most 63 of [-A-Za-z0-9_.], starting and ending "
                           f"alphanumeric), got {show(v)}")
            continue
        msg = names.check_text(v) if not labels else None
        if msg or len(v) > 4096:
            r.error(where, msg or f"expected an annotation value of at most 4096 characters, got {len(v)}")
            continue
        out.append((key, v))
    return tuple(out)


def _duration(r: Reader, data: dict[str, Any], path: KeyPath, key: str, default: str | None = None,
              minimum: int = 0) -> m.Duration | None:
    value = data.get(key, default)
    if value is None:
        return None
    where = (*path, key)
    if not isinstance(value, str):
        r.error(where, f"expected a duration like 5m or 1h, got {show(value)}")
        return None
    try:
        seconds = parse_prom_duration(value)
    except ValueError as exc:
        r.error(where, f"expected a duration like 5m or 1h, got {show(value)} ({exc})")
        return None
    if seconds != int(seconds) or seconds < minimum:
        r.error(where, f"expected a whole number of seconds of at least {minimum}s, got {show(value)}")
        return None
    return m.Duration(value, int(seconds))


def _secret(r: Reader, value: Any, path: KeyPath) -> m.SecretRef | None:
    if isinstance(value, str):
        r.error(path, "expected a secret reference {secret: <name>, key: <key>}, got a literal string; "
                      "secrets are referenced, never inlined")
        return None
    d = r.mapping(value, path, {"secret", "key"}, {"secret", "key"})
    sname = r.string(d, path, "secret", pattern=names.DNS_LABEL, secret_slot="-")
    skey = r.string(d, path, "key", pattern=names.SECRET_KEY, secret_slot="-._A")
    return m.SecretRef(sname, skey) if sname and skey else None


def _team(r: Reader, value: Any, path: KeyPath) -> m.Team | None:
    d = r.mapping(value, path, {"name", "slack_channel", "slack_webhook", "pagerduty_routing_key"},
                  {"name", "slack_channel", "slack_webhook"})
    tname = r.string(d, path, "name", pattern=names.DNS_LABEL)
    channel = r.string(d, path, "slack_channel", pattern=names.SLACK_CHANNEL)
    hook = _secret(r, d.get("slack_webhook"), (*path, "slack_webhook")) if "slack_webhook" in d else None
    pager = None
    if "pagerduty_routing_key" in d:
        pager = _secret(r, d["pagerduty_routing_key"], (*path, "pagerduty_routing_key"))
    if "pagerduty_routing_key" in d and pager is None:
        return None
    return m.Team(tname, channel, hook, pager) if tname and channel and hook else None


def _authority(r: Reader, value: Any, path: KeyPath) -> m.RollbackAuthority | None:
    d = r.mapping(value, path, {"name", "contact", "pagerduty_routing_key"},
                  {"name", "contact", "pagerduty_routing_key"})
    # The name is also part of alert descriptions and the PagerDuty text, which are Go templates.
    aname = r.string(d, path, "name", check=lambda v: _nonblank(v) or names.check_template_text(v))
    contact = r.string(d, path, "contact", check=lambda v: _nonblank(v) or names.check_text(v))
    key = None
    if "pagerduty_routing_key" in d:
        key = _secret(r, d["pagerduty_routing_key"], (*path, "pagerduty_routing_key"))
    return m.RollbackAuthority(aname, contact, key) if aname and contact and key else None


def _nonblank(value: str) -> str | None:
    # An empty name or contact used to pass validation and then fail an internal assertion (exit 3).
    return "expected a non-empty text, got an empty string" if not value.strip() else None


def _matchers(r: Reader, value: Any, path: KeyPath) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        r.error(path, f"expected a mapping of label names to values, got {show(value)}")
        return ()
    out = []
    for label in sorted(value):
        v = value[label]
        if not names.LABEL_NAME.fullmatch(label) or label.startswith("__"):
            r.error((*path, label), f"expected {names.describe_grammar(names.LABEL_NAME)} "
                                    f"not starting with '__', got {show(label)}")
            continue
        if label in names.RESERVED_LABELS:
            r.error((*path, label), f"label '{label}' is set by driftgate itself and cannot be matched on")
            continue
        if not isinstance(v, str):
            r.error((*path, label), f"expected a string label value, got {show(v)}")
            continue
        msg = names.check_label_value(v)
        if msg:
            r.error((*path, label), msg)
            continue
        out.append((label, v))
    return tuple(out)


def _prometheus(r: Reader, value: Any, path: KeyPath) -> m.PrometheusSource | None:
    d = r.mapping(value, path, {"address", "selector", "version_label", "version_from", "evaluation_interval",
                                "auth", "rollout_info_namespace_label", "analysis_auth"}, {"address", "selector"})
    address = r.string(d, path, "address", pattern=names.URL)
    if "selector" in d and not isinstance(d["selector"], dict):
        r.error((*path, "selector"), f"expected a mapping of label matchers (e.g. job: my-model), "
                                     f"got {show(d['selector'])}")
    # (only a mapping is read further: _matchers would report a non-mapping a second time)
    selector = _matchers(r, d["selector"], (*path, "selector")) if isinstance(d.get("selector"), dict) else ()
    if isinstance(d.get("selector"), dict) and not d["selector"]:
        r.error((*path, "selector"), "expected at least one label matcher (e.g. job: my-model)")
    version = r.string(d, path, "version_label", default="rollouts_pod_template_hash",
                       pattern=names.LABEL_NAME)
    if version in names.RESERVED_LABELS:
        r.error((*path, "version_label"), f"label '{version}' is reserved by driftgate")
    interval = _duration(r, d, path, "evaluation_interval", "1m", minimum=1)
    auth = _prom_auth(r, d["auth"], (*path, "auth")) if "auth" in d else m.NO_AUTH
    pod_label = _version_from(r, d.get("version_from", "pod_template_hash"), (*path, "version_from"))
    # Argo Rollouts' controller metrics scraped by a ServiceMonitor: the target's own namespace label
    # (argo-rollouts) wins, and the metric's namespace label arrives renamed to exported_namespace.
    info_ns = r.string(d, path, "rollout_info_namespace_label", default="exported_namespace",
                       pattern=names.LABEL_NAME)
    analysis_auth = _analysis_auth(r, d["analysis_auth"], (*path, "analysis_auth")) if "analysis_auth" in d else None
    if not (address and selector and interval and auth and info_ns) or pod_label is None or \
            ("analysis_auth" in d and analysis_auth is None):
        return None
    return m.PrometheusSource(address, selector, version, interval, auth, pod_label, info_ns, analysis_auth)


def _analysis_auth(r: Reader, value: Any, path: KeyPath) -> m.AnalysisAuth | None:
    """``prometheus.analysis_auth``: ``headers`` (plain) and/or ``bearer_token: {secret, key}``."""
    d = r.mapping(value, path, {"headers", "bearer_token"}, set())
    if not d:
        if isinstance(value, dict):
            r.error(path, "expected headers and/or bearer_token")
        return None
    headers = _headers(r, d["headers"], (*path, "headers")) if "headers" in d else ()
    token = _secret(r, d["bearer_token"], (*path, "bearer_token")) if "bearer_token" in d else None
    if headers is None or ("bearer_token" in d and token is None):
        return None
    return m.AnalysisAuth(headers, token)


# A pod-template label Argo Rollouts can read with a fieldRef: its path splitter cuts at '.', '[' and ']'
# (utils/analysis/factory.go extractValueFromRollout), so a prefixed key (app.kubernetes.io/version) cannot.
POD_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")


def _version_from(r: Reader, value: Any, path: KeyPath) -> str | None:
    """``prometheus.version_from``: ``pod_template_hash`` (the default) -> ""; ``{pod_label: NAME}`` -> NAME."""
    if value == "pod_template_hash":
        return ""
    if isinstance(value, dict):
        d = r.mapping(value, path, {"pod_label"}, {"pod_label"})
        if "pod_label" not in d:
            return None
        label = d["pod_label"]
        if not isinstance(label, str) or not POD_LABEL.fullmatch(label):
            r.error((*path, "pod_label"), f"expected a pod-template label name without a prefix or dots (Argo "
                                          f"Rollouts reads it with fieldRef spec.template.metadata.labels.<name>, "
                                          f"splitting at '.'), got {show(label)}")
            return None
        return label
    r.error(path, f"expected pod_template_hash or {{pod_label: <label>}}, got {show(value)}")
    return None


# Environment variable names and HTTP header names (RFC 9110 tokens) for ``prometheus.auth``.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$")
# Credentials have their own keys (and are read from the environment or a file); these headers
# would put a literal secret in the spec, or are set by the HTTP client itself.
FORBIDDEN_HEADERS = {"authorization": "use prometheus.auth.bearer_token or prometheus.auth.basic",
                     "proxy-authorization": "credentials are never written in a spec",
                     "cookie": "credentials are never written in a spec",
                     "host": "the HTTP client sets it", "content-length": "the HTTP client sets it",
                     "content-type": "the HTTP client sets it", "connection": "the HTTP client sets it",
                     "transfer-encoding": "the HTTP client sets it"}


def _prom_auth(r: Reader, value: Any, path: KeyPath) -> m.PrometheusAuth | None:
    """``prometheus.auth``: at most one of ``bearer_token`` / ``basic``, plus optional plain ``headers``."""
    d = r.mapping(value, path, {"bearer_token", "basic", "headers"}, set())
    if not d:
        if isinstance(value, dict):
            r.error(path, "expected at least one of bearer_token, basic or headers")
        return None
    if "bearer_token" in d and "basic" in d:
        r.error(path, "expected exactly one of bearer_token or basic, got both")
        return None
    ok = True
    bearer = basic = None
    if "bearer_token" in d:
        bearer = _credential(r, d["bearer_token"], (*path, "bearer_token"))
        ok = bearer is not None
    if "basic" in d:
        basic = _basic(r, d["basic"], (*path, "basic"))
        ok = basic is not None
    headers = _headers(r, d["headers"], (*path, "headers")) if "headers" in d else ()
    if not ok or headers is None:
        return None
    return m.PrometheusAuth(bearer, basic, headers)


def _credential(r: Reader, value: Any, path: KeyPath) -> m.CredentialRef | None:
    if isinstance(value, str):
        r.error(path, "expected a credential reference {env: NAME} or {file: path}, got a literal string; "
                      "secrets are referenced, never inlined")
        return None
    d = r.mapping(value, path, {"env", "file"}, set())
    if not d:
        if isinstance(value, dict):
            r.error(path, "expected a credential reference {env: NAME} or {file: path}, got an empty mapping")
        return None
    if len(d) != 1:
        r.error(path, "expected exactly one of env or file, got both")
        return None
    if "env" in d:
        name = d["env"]
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            r.error((*path, "env"), f"expected an environment variable name matching [A-Za-z_][A-Za-z0-9_]*, "
                                    f"got {hidden(name, '_A')}")
            return None
        return m.CredentialRef(name, "")
    file = d["file"]
    if not isinstance(file, str) or not file.strip() or "\0" in file:
        r.error((*path, "file"), f"expected a file path, got {show(file)}")
        return None
    return m.CredentialRef("", file)


def _basic(r: Reader, value: Any, path: KeyPath) -> m.BasicAuth | None:
    d = r.mapping(value, path, {"username", "password"}, {"username", "password"})
    username = r.string(d, path, "username", check=names.check_text)
    if username and ":" in username:
        r.error((*path, "username"), f"a basic-auth username cannot contain ':', got {show(username)}")
        username = ""
    password = _credential(r, d["password"], (*path, "password")) if "password" in d else None
    return m.BasicAuth(username, password) if username and password else None


def _headers(r: Reader, value: Any, path: KeyPath) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(value, dict) or not value:
        r.error(path, f"expected a mapping of header names to values (e.g. X-Scope-OrgID: team-a), "
                      f"got {show(value)}")
        return None
    out: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    ok = True
    for name in sorted(value, key=str):
        where = (*path, name)
        v = value[name]
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            r.error(where, f"expected an HTTP header name (letters, digits and !#$%&'*+-.^_`|~), got {show(name)}")
            ok = False
            continue
        low = name.lower()
        if low in FORBIDDEN_HEADERS:
            r.error(where, f"header '{name}' is not allowed here: {FORBIDDEN_HEADERS[low]}")
            ok = False
            continue
        if low in seen:
            r.error(where, f"header '{name}' is already given as '{seen[low]}' (header names ignore case)")
            ok = False
            continue
        seen[low] = name
        if not isinstance(v, str) or not v:
            r.error(where, f"expected a non-empty string header value (header values are not secret), got {show(v)}")
            ok = False
            continue
        msg = names.check_text(v)
        if msg:
            r.error(where, msg)
            ok = False
            continue
        out.append((name, v))
    return tuple(out) if ok else None


def parse_budget(value: Any) -> m.Budget:
    if not isinstance(value, str):
        raise ValueError("a budget is a string")
    match = names.BUDGET.fullmatch(value)
    if not match:
        raise ValueError("write it as <count>/<day|week|month|quarter|year>")
    events = float(match.group(1))
    if not 0 < events <= 1000:
        raise ValueError("the count must be > 0 and <= 1000")
    return m.Budget(value.strip(), events, names.BUDGET_PERIODS[match.group(2)])


def _budget(r: Reader, value: Any, path: KeyPath) -> tuple[m.Budget | None, m.Budget | None]:
    d = r.mapping(value, path, {"auto", "manual"}, {"auto"})
    auto = r.convert(d, path, "auto", parse_budget, "a false-rollback budget like 1/quarter")
    manual = r.convert({"manual": d.get("manual", "1/week")}, path, "manual", parse_budget,
                       "a manual-review budget like 1/week")
    if auto and manual and manual.rate_per_second < auto.rate_per_second:
        r.error((*path, "manual"), f"the manual-review budget ({manual.text}) must allow at least as many "
                                   f"alerts as the automatic one ({auto.text})")
    return auto, manual


def _history(r: Reader, root: Path, value: Any, path: KeyPath,
             check_exports: bool) -> tuple[m.Duration | None, list[str], list[m.ExcludedSpan], str]:
    d = r.mapping(value, path, {"minimum", "exports", "exclude", "exclude_file"}, {"exports"})
    minimum = _duration(r, d, path, "minimum", "14d", minimum=3600)
    exports: list[str] = []
    raw = d.get("exports")
    if "exports" in d and (not isinstance(raw, list) or not raw):
        r.error((*path, "exports"), f"expected a non-empty list of export files, got {show(raw)}")
        raw = []
    for i, item in enumerate(raw or []):
        where = (*path, "exports", i)
        if not isinstance(item, str):
            r.error(where, f"expected a file path, got {show(item)}")
            continue
        rel = PurePosixPath(item)
        if rel.is_absolute() or ".." in rel.parts or "\\" in item:
            r.error(where, f"expected a path inside the repository, got {show(item)}")
            continue
        refused = fsio.refusal(root / rel, root)
        if refused is not None and "loop" in refused:
            r.error(where, f"{item}: {refused}")
            continue
        if not fsio.inside(root / rel, root):
            r.error(where, f"the path escapes the repository through a symlink: {show(item)}")
            continue
        refused = refused if check_exports else None
        if refused == "file not found":
            r.error(where, f"file not found: {item} (run 'driftgate export', or see docs/exports.md for the "
                           f"formats)")
            continue
        if refused is not None:  # a FIFO, a folder, a dangling link: never opened
            r.error(where, f"{item}: {refused}")
            continue
        if item in exports:
            r.error(where, f"duplicate export file {show(item)}")
            continue
        if check_exports and item.lower().endswith((".predictions.csv", ".predictions.parquet")):
            side = fsio.refusal(root / f"{item}.meta.json", root)
            if side == "file not found":
                r.error(where, f"a prediction log needs its sidecar {item}.meta.json (metric, buckets, step); "
                               f"see docs/exports.md")
                continue
            if side is not None:
                r.error(where, f"the sidecar {item}.meta.json: {side}")
                continue
        exports.append(item)
    spans = _exclude_list(r, d["exclude"], (*path, "exclude")) if "exclude" in d else []
    exclude_file = ""
    if "exclude_file" in d:
        exclude_file, more = _exclude_file(r, root, d["exclude_file"], (*path, "exclude_file"))
        spans += more
    spans.sort(key=lambda x: (x.start, x.end, x.reason))
    return minimum, exports, spans, exclude_file


EXCLUDE_KEYS = {"from", "to", "reason"}


def _exclude_list(r: Reader, value: Any, path: KeyPath) -> list[m.ExcludedSpan]:
    """``history.exclude`` (or the list of an ``exclude_file``, read with its own :class:`Reader`): spans of
    the history that are not normal, each ``{from, to, reason}``; every problem reported, at its item."""
    if not isinstance(value, list):
        r.error(path, f"expected a list of spans {{from: <RFC 3339 time>, to: <RFC 3339 time>, reason: <text>}}, "
                      f"got {show(value)}")
        return []
    spans = []
    for i, item in enumerate(value):
        where = (*path, i)
        if item is None:  # an empty list item (a spec's is reported by _nulls already)
            if not path or path[0] != "history":
                r.error(where, "expected a span {from, to, reason}, got null (an empty list item or '~')")
            continue
        d = r.mapping(item, where, EXCLUDE_KEYS, EXCLUDE_KEYS)
        if not d:
            continue
        start, end = (r.convert(d, where, key, _parse_timestamp, "an RFC 3339 timestamp with a time zone")
                      if d.get(key) is not None else None for key in ("from", "to"))
        for key in ("from", "to"):  # (a spec's null values are reported and removed by _nulls)
            if key in d and d[key] is None:
                r.error((*where, key), "expected an RFC 3339 timestamp with a time zone, got null")
        reason = d.get("reason")
        if "reason" in d:
            if not isinstance(reason, str) or not reason.strip():
                r.error((*where, "reason"), f"expected a non-empty reason (why this span is not normal, e.g. "
                                            f"the incident's ticket), got {show(reason)}")
                reason = None
            else:
                bad = names.check_text(reason)
                if bad:
                    r.error((*where, "reason"), f"expected text: {bad}")
                    reason = None
        if start is not None and end is not None and end <= start:
            r.error((*where, "to"), f"expected a time after from ({_utc(start)}), got {show(d['to'])}: a span "
                                    f"ends after it starts")
            continue
        if start is not None and end is not None and isinstance(reason, str):
            spans.append(m.ExcludedSpan(start, end, reason))
    return spans


def _utc(unix: int) -> str:
    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _exclude_file(r: Reader, root: Path, value: Any, path: KeyPath) -> tuple[str, list[m.ExcludedSpan]]:
    """``history.exclude_file``: a YAML file in the repository holding a list like ``history.exclude``'s
    (a file of incident windows); its problems name that file, line, column and the item's key path."""
    if not isinstance(value, str) or not value:
        r.error(path, f"expected a file path, got {show(value)}")
        return "", []
    rel = PurePosixPath(value)
    if rel.is_absolute() or ".." in rel.parts or "\\" in value:
        r.error(path, f"expected a path inside the repository, got {show(value)}")
        return "", []
    if not fsio.inside(root / rel, root):
        r.error(path, f"the path escapes the repository through a symlink: {show(value)}")
        return "", []
    refused = fsio.refusal(root / rel, root)
    if refused is not None:
        r.error(path, f"{value}: {refused}")
        return "", []
    found: list[Problem] = []
    data, marks = load_yaml(root / rel, value, found, root)
    what = f"a list of spans {{from, to, reason}} (this file is history.exclude_file of {r.marks.file})"
    # An empty file is reported by the loader as a spec would be ("expected a mapping"): say what is expected here.
    r.problems.extend(dataclasses.replace(p, message=p.message.removesuffix("a mapping") + what)
                      if p.message.endswith("; expected a mapping") else p for p in found)
    if data is None:
        if not found:
            r.error(path, f"{value}: expected {what}, got nothing")
        return "", []
    inner = Reader(marks)
    if not isinstance(data, list):
        inner.error((), f"expected {what}, got {show(data)}")
        data = []
    spans = _exclude_list(inner, data, ())
    r.problems.extend(inner.problems)
    return value, spans


def _parse_timestamp(value: Any) -> int:
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, dt.date):  # YAML reads an unquoted 2026-11-26 as a date
        raise ValueError("a bare date has no time of day or time zone; write e.g. 2026-11-26T12:00:00Z")
    elif isinstance(value, str):
        try:
            stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError("not an RFC 3339 timestamp") from exc
    else:
        raise ValueError("a timestamp is a string like 2026-11-26T12:00:00Z")
    if stamp.tzinfo is None:
        raise ValueError("the timestamp needs a time zone (end it with Z)")
    return int(stamp.timestamp())


def _freeze(r: Reader, value: Any, path: KeyPath) -> m.Freeze | None:
    d = r.mapping(value, path, {"window", "webhook", "lifted_until"}, {"window", "webhook"})
    window = _duration(r, d, path, "window", minimum=300)
    hook = r.mapping(d.get("webhook"), (*path, "webhook"), {"url", "token"}, {"url", "token"}) \
        if "webhook" in d else {}
    url = r.string(hook, (*path, "webhook"), "url", pattern=names.URL) if hook else ""
    token = _secret(r, hook["token"], (*path, "webhook", "token")) if "token" in hook else None
    lifted = None
    if d.get("lifted_until") is not None:
        lifted = r.convert(d, path, "lifted_until", _parse_timestamp, "an RFC 3339 timestamp")
    return m.Freeze(window, url, token, lifted) if window and url and token else None


def _release(r: Reader, value: Any, path: KeyPath) -> m.Release | None:
    d = r.mapping(value, path, {"horizon", "bake", "auto_undo"}, set())
    for key in ("horizon", "bake"):
        if key in d and d[key] is None:
            r.error((*path, key), "expected a duration like 24h, got null (leave the key out for the default)")
    if any(d.get(key, "") is None for key in ("horizon", "bake")):
        return None
    horizon = _duration(r, d, path, "horizon", "24h", minimum=3600)
    bake = _duration(r, d, path, "bake", "2h", minimum=0)
    undo, undo_ok = _auto_undo(r, d["auto_undo"], (*path, "auto_undo")) if "auto_undo" in d else (None, True)
    if horizon is not None and horizon.seconds > 30 * 86_400:
        r.error((*path, "horizon"), f"expected at most 30d, got {show(horizon.text)}")
        return None
    if horizon is not None and bake is not None and bake.seconds > horizon.seconds:
        r.error((*path, "bake"), f"expected a bake no longer than the horizon ({horizon.text}), got {show(bake.text)}")
        return None
    return m.Release(horizon, bake, undo) if horizon and bake and undo_ok else None


def _auto_undo(r: Reader, value: Any, path: KeyPath) -> tuple[m.AutoUndo | None, bool]:
    """``auto_undo: false`` (the default) or a mapping with a ``token`` (``enabled`` defaults to true)."""
    if value is False:
        return None, True
    if not isinstance(value, dict):
        r.error(path, f"expected false or a mapping with token: {{secret, key}} (and optionally enabled, namespace, "
                      f"event_bus, image, kubectl_image), got {hidden(value, '-')}: the EventSource that undoes a "
                      f"release accepts only Alertmanager's bearer token")
        return None, False
    before = len(r.problems)
    d = r.mapping(value, path, {"enabled", "token", "namespace", "event_bus", "image", "kubectl_image"}, {"token"})
    enabled = d.get("enabled", True)
    if not isinstance(enabled, bool):
        r.error((*path, "enabled"), f"expected true or false, got {show(enabled)}")
    token = _secret(r, d["token"], (*path, "token")) if "token" in d else None
    defaults = {"namespace": "argo-events", "event_bus": "default", "image": m.UNDO_IMAGE,
                "kubectl_image": m.KUBECTL_IMAGE}
    values = {key: r.string(d, path, key, default=default,
                            pattern=names.IMAGE if key.endswith("image") else names.DNS_LABEL)
              for key, default in defaults.items()}
    if len(r.problems) > before or token is None:
        return None, False
    return (m.AutoUndo(token=token, **values) if enabled else None), True


def _analysis(r: Reader, value: Any, path: KeyPath) -> m.Analysis | None:
    d = r.mapping(value, path, {"interval", "count", "failure_limit", "inconclusive_limit",
                                "consecutive_error_limit", "canary_weight", "dry_run"}, set())
    dry_run = d.get("dry_run", False)
    if not isinstance(dry_run, bool):
        r.error((*path, "dry_run"), f"expected true or false, got {show(dry_run)}")
    interval = _duration(r, d, path, "interval", "1m", minimum=10)
    if "count" in d:
        r.error((*path, "count"), "no longer used: the background analysis measures until the rollout completes "
                                  "(a count ran out and left the later steps and the bake unguarded); remove it")
    failure = r.number(d, path, "failure_limit", 0, low=0, high=100, integer=True)
    inconclusive = r.number(d, path, "inconclusive_limit", 0, low=0, high=100, integer=True)
    errors = r.number(d, path, "consecutive_error_limit", 4, low=0, high=100, integer=True)
    weight = r.number(d, path, "canary_weight", 0.1, low=0, high=1, low_open=True)
    if weight is not None and abs(100 * weight - round(100 * weight)) > 1e-9:
        r.error((*path, "canary_weight"), f"expected a whole percentage such as 0.1 or 0.25 (Argo's setWeight is "
                                          f"an integer percent), got {show(weight)}")
        weight = None
    if interval is None or None in (failure, inconclusive, errors, weight) or "count" in d or \
            not isinstance(dry_run, bool):
        return None
    assert failure is not None and inconclusive is not None and errors is not None
    assert weight is not None
    return m.Analysis(interval, int(failure), int(inconclusive), int(errors), weight, dry_run)


def _signals(r: Reader, value: Any, path: KeyPath, prom: m.PrometheusSource | None) -> list[m.Signal]:
    if not isinstance(value, list) or not value:
        r.error(path, f"expected a non-empty list of signals, got {show(value)}")
        return []
    if len(value) > MAX_SIGNALS:
        r.error(path, f"at most {MAX_SIGNALS} signals per model, got {len(value)}")
        return []
    out: list[m.Signal] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        sig = _signal(r, item, (*path, i), prom)
        if sig is None:
            continue
        if sig.name in seen:
            r.error((*path, i, "name"), f"duplicate signal name '{sig.name}'")
            continue
        seen.add(sig.name)
        out.append(sig)
    return out


def _signal(r: Reader, value: Any, path: KeyPath, prom: m.PrometheusSource | None) -> m.Signal | None:
    if not isinstance(value, dict):
        r.error(path, f"expected a mapping, got {show(value)}")
        return None
    kind_text = r.choice(value, path, "kind", [k.value for k in m.SignalKind])
    if "kind" not in value:
        r.error(path, "missing required key 'kind'")
    if not kind_text:
        r.mapping(value, path, COMMON_SIGNAL_KEYS | set().union(*KIND_KEYS.values()), {"name", "kind"})
        return None
    kind = m.SignalKind(kind_text)
    d = r.mapping(value, path, COMMON_SIGNAL_KEYS | KIND_KEYS[kind], {"name", "kind"} | KIND_REQUIRED[kind])
    name = r.string(d, path, "name", pattern=names.SIGNAL_NAME)
    default_stat, default_dir = SIGNAL_DEFAULTS[kind]
    statistic = default_stat
    if kind is m.SignalKind.DISTRIBUTION_DRIFT:
        statistic = m.Statistic(r.choice(d, path, "statistic", DRIFT_STATISTICS, default_stat.value))
    metric = r.string(d, path, "metric" if "metric" in KIND_KEYS[kind] else "numerator",
                      pattern=names.METRIC_NAME, check=names.check_metric_name)
    denominator = r.string(d, path, "denominator", pattern=names.METRIC_NAME, check=names.check_metric_name)
    if metric and (metric.endswith("_bucket") and kind in (m.SignalKind.DISTRIBUTION_DRIFT,
                                                           m.SignalKind.LATENCY_QUANTILE)):
        r.error((*path, "metric"), f"expected the histogram's base name without '_bucket', got {show(metric)}")
        metric = ""
    quantile = r.number(d, path, "quantile", 0.0, low=0.0, high=0.9999, low_open=True) or 0.0
    matchers = _matchers(r, d.get("labels"), (*path, "labels"))
    if prom is not None:
        for label, _ in matchers:
            if label in dict(prom.selector):
                r.error((*path, "labels", label), f"label '{label}' is already in prometheus.selector")
            if label == prom.version_label:
                r.error((*path, "labels", label), f"label '{label}' is the version label")
    taken = {lbl for lbl, _ in matchers} | ({lbl for lbl, _ in prom.selector} | {prom.version_label}
                                            if prom is not None else set())
    sides = [_side_matchers(r, d[key], (*path, key), taken) if key in d else ()
             for key in ("numerator_labels", "denominator_labels")]
    windows = _windows(r, d.get("windows", {"fast": "10m", "slow": "1h"}), (*path, "windows"))
    if windows is not None and prom is not None:
        windows = _whole_evaluations(r, windows, prom.evaluation_interval, (*path, "windows"))
    direction = m.Direction(r.choice(d, path, "direction", [x.value for x in m.Direction], default_dir.value))
    tier = m.Tier(r.choice(d, path, "tier", [x.value for x in m.Tier], m.Tier.AUTO.value))
    min_events = r.number(d, path, "min_events", 200, low=1, high=1e9, integer=True)
    no_data = m.NoData(r.choice(d, path, "no_data", [x.value for x in m.NoData], m.NoData.INCONCLUSIVE.value))
    drift = kind is m.SignalKind.DISTRIBUTION_DRIFT
    if not drift and d.get("compare_with") == "last_week":
        r.error((*path, "compare_with"), f"'last_week' compares distributions only (a {kind.value} signal compares "
                                         f"with its fitted baseline or, a young version, with the stable version "
                                         f"over the same window); expected baseline or stable")
        compare_with = "baseline"
    else:
        compare_with = r.choice(d, path, "compare_with", list(COMPARE_WITH if drift else COMPARE_WITH_NOT_DRIFT),
                                "baseline") or "baseline"
    # A ratio or quantile compared with the stable version is the canary's value minus the stable one's.
    difference = compare_with == "stable" and not drift
    pinned = _pinned(r, d.get("threshold"), (*path, "threshold"), statistic, direction, difference)
    description = r.string(d, path, "description", default="", check=names.check_text)
    if not (name and metric and windows and pinned) or min_events is None or None in sides:
        return None
    if kind in (m.SignalKind.ERROR_RATIO, m.SignalKind.KPI_RATIO) and not denominator:
        return None
    if sides[0] is not None and sides[1] is not None and (metric, sides[0]) == (denominator, sides[1]):
        r.error(path, "the numerator and the denominator select the same series: the ratio is always 1")
        return None
    assert sides[0] is not None and sides[1] is not None
    return m.Signal(name=name, kind=kind, statistic=statistic, metric=metric, denominator=denominator,
                    quantile=quantile, matchers=matchers, windows=windows, direction=direction, tier=tier,
                    min_events=int(min_events), no_data=no_data, pinned=pinned, description=description,
                    compare_with=compare_with, numerator_matchers=sides[0], denominator_matchers=sides[1])


# RE2 (Prometheus' regex engine) has none of these: a Python-only regex would fit on one set of series
# and select another (or fail to load) in Prometheus.
_NOT_RE2 = re.compile(r"\(\?(=|!|<=|<!|P=|>)|\\[1-9]|\(\?\(")


def _side_matchers(r: Reader, value: Any, path: KeyPath, taken: set[str]) -> tuple[tuple[str, str, str], ...] | None:
    """``numerator_labels`` / ``denominator_labels``: ``label: value`` (equality) or ``label: {regex: RE}``
    (``=~``, fully anchored as in Prometheus), e.g. ``code: {regex: "5.."}`` for the textbook error SLI."""
    if not isinstance(value, dict) or not value:
        r.error(path, f"expected a mapping of label matchers (e.g. code: {{regex: \"5..\"}}), got {show(value)}")
        return None
    out = []
    ok = True
    for label in sorted(value, key=str):
        v, where = value[label], (*path, str(label))
        if not isinstance(label, str) or not names.LABEL_NAME.fullmatch(label) or label.startswith("__"):
            r.error(where, f"expected {names.describe_grammar(names.LABEL_NAME)} not starting with '__', "
                           f"got {show(label)}")
            ok = False
            continue
        if label in names.RESERVED_LABELS or label in taken:
            r.error(where, f"label '{label}' is set by driftgate, the selector, the signal's labels or the version "
                           f"label; it cannot be matched again here")
            ok = False
            continue
        op, text = "=", v
        if isinstance(v, dict):
            d = r.mapping(v, where, {"regex"}, {"regex"})
            if "regex" not in d:
                ok = False
                continue
            op, text = "=~", d["regex"]
        if not isinstance(text, str) or (op == "=" and not text):
            r.error(where, f"expected a non-empty string or {{regex: <RE2 pattern>}}, got {show(text)}")
            ok = False
            continue
        msg = names.check_label_value(text)
        if msg:
            r.error(where, msg)
            ok = False
            continue
        if op == "=~":
            try:
                re.compile(text)
            except re.error as exc:
                r.error((*where, "regex"), f"not a valid regular expression: {exc}")
                ok = False
                continue
            if _NOT_RE2.search(text):
                r.error((*where, "regex"), "lookarounds, backreferences and atomic groups are not RE2 (Prometheus' "
                                           f"regex engine), got {show(text)}")
                ok = False
                continue
        out.append((label, op, text))
    return tuple(out) if ok else None


def _windows(r: Reader, value: Any, path: KeyPath) -> m.Windows | None:
    d = r.mapping(value, path, {"fast", "slow"}, {"fast", "slow"})
    fast = _duration(r, d, path, "fast", minimum=60)
    slow = _duration(r, d, path, "slow", minimum=60)
    if fast and slow and fast.seconds >= slow.seconds:
        r.error((*path, "slow"), f"expected the slow window to be longer than the fast one ({fast}), "
                                 f"got {show(slow.text)}")
        return None
    for key, w in (("fast", fast), ("slow", slow)):
        if w and w.seconds > 7 * 86400:
            r.error((*path, key), f"expected a window of at most 7d, got {show(w.text)}")
            return None
    return m.Windows(fast, slow) if fast and slow else None


def _whole_evaluations(r: Reader, windows: m.Windows, every: m.Duration, path: KeyPath) -> m.Windows | None:
    """The windows, when each is a whole number (at least 2) of rule evaluations: the rules count a
    window as the sum of its evaluations' counts (driftgate.render.rules)."""
    for key, w in windows.items():
        evaluations, rest = divmod(w.seconds, every.seconds)
        if rest:
            r.error((*path, key), f"expected a whole number of rule evaluations (prometheus.evaluation_interval "
                                  f"{every.text}), got {show(w.text)}: the rules count a window as the sum of its "
                                  f"evaluations' counts, so it would cover "
                                  f"{prom_duration((evaluations + 1) * every.seconds)}")
            return None
        if evaluations < 2:
            r.error((*path, key), f"expected a window of at least 2 rule evaluations (prometheus.evaluation_interval "
                                  f"{every.text}), got {show(w.text)}")
            return None
    return windows


def _pinned(r: Reader, value: Any, path: KeyPath, statistic: m.Statistic,
            direction: m.Direction, difference: bool = False) -> m.PinnedThreshold | None:
    """``threshold: {auto, manual}``; ``difference``: pinned on the canary's value minus the stable version's
    (``compare_with: stable``, ratios and quantiles), so any sign, a ratio's within (-1, 1)."""
    if value is None:
        return m.PinnedThreshold(None, None)
    d = r.mapping(value, path, {"auto", "manual"}, set())
    if not d:
        return m.PinnedThreshold(None, None) if isinstance(value, dict) else None
    high = {m.Statistic.JS: 1.0, m.Statistic.TVD: 1.0, m.Statistic.RATIO: 1.0}.get(statistic)
    low = (-high if high is not None else None) if difference else 0.0
    auto = r.number(d, path, "auto", low=low, high=high, low_open=True)
    manual = r.number(d, path, "manual", low=low, high=high, low_open=True)
    if auto is not None and manual is not None:
        bad = manual > auto if direction is m.Direction.ABOVE else manual < auto
        if bad:
            word = "at most" if direction is m.Direction.ABOVE else "at least"
            r.error((*path, "manual"), f"expected the manual band to be {word} the automatic threshold "
                                       f"{auto:g} (direction {direction.value}), got {manual:g}")
            return None
    if ("auto" in d and auto is None) or ("manual" in d and manual is None):
        return None
    return m.PinnedThreshold(auto, manual)
