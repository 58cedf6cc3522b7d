"""One renderer per target, in an explicit registry; each returns ``{relative path: text}``.

Per-model renderers take a :class:`ModelContext`; the Alertmanager configuration file is shared by
all models and is rendered once from every context.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jinja2

try:
    from yaml import CSafeLoader as _SafeFast
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeFast  # type: ignore[assignment]

from driftgate.errors import RenderError
from driftgate.model import ModelSpec
from driftgate.render.audit import audit
from driftgate.render.context import ModelContext
from driftgate.render.env import environment, header
from driftgate.render.plots import Picture, picture_path, render_pictures
from driftgate.render.promtests import render_test
from driftgate.render.rules import Group
from driftgate.render.undo import undo as undo_of
from driftgate.validate import crd

OUT = "generated"
Files = dict[str, "str | bytes | Picture"]  # pictures are drawn (or reused) by plots.resolve
SECRETS_DIR = "/etc/alertmanager/secrets"


def _sources(ctx: ModelContext) -> list[str]:
    return [ctx.spec.spec_path, f"baselines/{ctx.spec.name}.yaml"]


def _render(env: jinja2.Environment, name: str, **values: Any) -> str:
    try:
        return env.get_template(name).render(**values)
    except jinja2.TemplateError as exc:  # an edited or broken template: say which, write nothing
        line = f":{exc.lineno}" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        raise RenderError(f"templates/{name}{line}: {type(exc).__name__}: {exc}; nothing was written") from exc


def _render_macro(env: jinja2.Environment, name: str, macro: str, *args: Any) -> str:
    """A template's macro called with ``args`` (the same errors as :func:`_render`)."""
    try:
        return str(getattr(env.get_template(name).module, macro)(*args))
    except jinja2.TemplateError as exc:
        line = f":{exc.lineno}" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        raise RenderError(f"templates/{name}{line}: {type(exc).__name__}: {exc}; nothing was written") from exc


def argo(env: jinja2.Environment, ctx: ModelContext) -> Files:
    text = _render(env, "argo/analysis-templates.yaml.j2", ctx=ctx, header=header(_sources(ctx)).rstrip("\n"))
    return {f"{OUT}/argo/{ctx.spec.name}.yaml": text}


def rollout(env: jinja2.Environment, ctx: ModelContext) -> Files:
    """The kustomize Component that wires the user's Rollout to the templates (see the template)."""
    text = _render(env, "argo/rollout-component.yaml.j2", ctx=ctx, header=header(_sources(ctx)).rstrip("\n"))
    return {f"{OUT}/argo/{ctx.spec.name}-rollout/kustomization.yaml": text}


def _regex_literal(value: str) -> str:
    """``value`` as a Go (RE2) regular expression matching exactly it."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value)


def undo_filters(ctx: ModelContext) -> list[tuple[str, str]]:
    """The Sensor's data filters on the Alertmanager webhook body: (gjson path, anchored regex)."""
    u = undo_of(ctx.spec)
    assert u is not None
    exact = [("status", "firing"), ("commonLabels.alertname", "DriftgateAutoRollback"),
             ("commonLabels.rollback", "auto"), ("commonLabels.model", ctx.spec.name),
             ("commonLabels.namespace", ctx.spec.namespace)]
    return [(f"body.{path}", f"^{_regex_literal(value)}$") for path, value in exact] + \
        [(f"body.commonLabels.{u.version_label}", u.version_pattern)]


def argo_events(env: jinja2.Environment, ctx: ModelContext) -> Files:
    """The opt-in automatic undo (release.auto_undo): nothing when it is off."""
    u = undo_of(ctx.spec)
    if u is None:
        return {}
    text = _render(env, "argo-events/auto-undo.yaml.j2", ctx=ctx, u=u, filters=undo_filters(ctx),
                   header=header(_sources(ctx)).rstrip("\n"))
    return {f"{OUT}/argo-events/{ctx.spec.name}.yaml": text}


def _objects(text: str) -> list[Any]:
    """The YAML documents of ``text`` (safe, with libyaml: the output was just rendered and is trusted)."""
    loader = _SafeFast(text)
    try:
        out = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            doc = loader.get_data()
            if doc:
                out.append(doc)
        return out
    finally:
        loader.dispose()


def pad_lists(value: Any) -> Any:
    """Give every object in a list the same attributes (missing ones null).

    ``kubernetes_manifest`` converts HCL values with the CRD's types, and a tuple whose objects have
    different attribute sets (a recording rule next to an alerting rule) does not convert.
    """
    if isinstance(value, dict):
        return {k: pad_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [pad_lists(v) for v in value]
        if items and all(isinstance(v, dict) for v in items):
            keys: list[str] = []
            for item in items:
                keys += [k for k in item if k not in keys]
            return [{k: item.get(k) for k in keys} for item in items]
        return items
    return value


def terraform(env: jinja2.Environment, ctx: ModelContext, rendered: Files | None = None) -> Files:
    """Both Terraform flavours; the kubernetes_manifest objects are the model's rendered YAML objects
    (``rendered``: this model's files when the caller already has them, else they are rendered here)."""
    hdr = header(_sources(ctx)).rstrip("\n")
    name = ctx.spec.name
    if rendered is None:
        rendered = {**argo(env, ctx), **prometheus(env, ctx), **alertmanager(env, ctx), **argo_events(env, ctx)}
    objects = []
    for rel in (f"{OUT}/argo/{name}.yaml", f"{OUT}/prometheus/{name}.yaml", f"{OUT}/alertmanager/{name}.yaml",
                f"{OUT}/argo-events/{name}.yaml"):
        text = rendered.get(rel)
        if text is None:  # argo-events: only with release.auto_undo
            continue
        assert isinstance(text, str)
        docs, problems = crd.parse_documents(text, rel)  # remembered: verify reads the same text next
        objects += [doc for _, doc in docs if doc] if not problems else _objects(text)
    manifests = [{"id": f"{o['kind'].lower()}_{o['metadata']['name'].replace('-', '_')}", "object": pad_lists(o)}
                 for o in objects]
    return {
        f"{OUT}/terraform/argo_rollouts/{name}.tf": _render(env, "terraform/argo_rollouts.tf.j2", ctx=ctx, header=hdr),
        f"{OUT}/terraform/kubernetes_manifest/{name}.tf": _render(
            env, "terraform/kubernetes_manifest.tf.j2", manifests=manifests, header=hdr),
    }


def prometheus(env: jinja2.Environment, ctx: ModelContext) -> Files:
    hdr = header(_sources(ctx)).rstrip("\n")
    files: Files = {}
    test = render_test(ctx, f"../rules/{ctx.spec.name}.rules.yaml")
    if test is not None:
        files[f"{OUT}/prometheus/tests/{ctx.spec.name}.test.yaml"] = (
            f"{hdr}\n# Run: promtool test rules generated/prometheus/tests/{ctx.spec.name}.test.yaml\n{test}")
    # The rule groups are rendered once: the PrometheusRule carries them under spec:, the plain rule file
    # is the same text (so that verify parses and validates them once: see emitted()).
    groups = _render_macro(env, "prometheus/_groups.yaml.j2", "groups", ctx.groups)
    rel = f"{OUT}/prometheus/{ctx.spec.name}.yaml"
    text = _render(env, "prometheus/prometheusrule.yaml.j2", ctx=ctx, header=hdr, groups=groups)
    try:  # validated as built (see crd.built_documents)
        crd.built_documents(text, rel, [(0, prometheus_rule(ctx))], family="prometheus/prometheusrule.yaml.j2")
    except crd.BuiltMismatch as exc:
        raise RenderError(f"the rendered output failed validation; nothing was written:\n  {exc}",
                          hint="this is a driftgate bug unless a template was edited") from None
    return files | {
        rel: text,
        f"{OUT}/prometheus/rules/{ctx.spec.name}.rules.yaml": _render(env, "prometheus/rules.yaml.j2", ctx=ctx,
                                                                      header=hdr, groups=groups),
    }


def rule_groups(groups: tuple[Group, ...]) -> list[dict[str, Any]]:
    """The rule groups as the data ``prometheus/_groups.yaml.j2`` writes (keys in the template's order)."""
    out = []
    for g in groups:
        rules = []
        for r in g.rules:
            rule: dict[str, Any] = {"record": r.record} if r.record else {"alert": r.alert}
            rule["expr"] = r.expr
            if r.for_:
                rule["for"] = r.for_
            for key, pairs in (("labels", r.labels), ("annotations", r.annotations)):
                if pairs:
                    rule[key] = dict(pairs)
                    if len(rule[key]) != len(pairs):
                        raise RenderError(f"rule {r.record or r.alert}: a {key[:-1]} is given twice: {pairs}")
            rules.append(rule)
        out.append({"name": g.name, "interval": g.interval, "rules": rules})
    return out


def prometheus_rule(ctx: ModelContext) -> dict[str, Any]:
    """The PrometheusRule ``prometheus/prometheusrule.yaml.j2`` renders, as data (keys in its order)."""
    labels = {"app.kubernetes.io/managed-by": "driftgate", "driftgate.io/model": ctx.spec.name,
              **dict(ctx.spec.object_labels)}
    metadata: dict[str, Any] = {"name": f"driftgate-{ctx.spec.name}", "namespace": ctx.spec.namespace,
                                "labels": labels}
    if ctx.spec.object_annotations:
        metadata["annotations"] = dict(ctx.spec.object_annotations)
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": metadata,
            "spec": {"groups": rule_groups(ctx.groups)}}


def emitted(rel: str) -> bool:
    """A rendered YAML file that verify does not parse again, because it was built from data already checked:

    * the promtool test (``prometheus/tests/*.test.yaml``): PyYAML's emitter (:data:`promtests.DUMPER`)
      writing Python data, which it always writes as YAML that reads back as the same data (notes aside:
      comment lines of identifiers and numbers);
    * the plain rule file (``prometheus/rules/*.rules.yaml``): a comment header and the very text of the
      rule groups that the model's PrometheusRule carries under ``spec:``, which is parsed and validated
      against the PrometheusRule CRD.

    The tests keep the real parser on both: tests/test_generated.py reads the rule file back and compares
    it with the PrometheusRule's groups, and promtool checks and runs both files."""
    parts = rel.split("/")
    return len(parts) == 4 and parts[:2] == [OUT, "prometheus"] and (
        (parts[2] == "tests" and parts[3].endswith(".test.yaml"))
        or (parts[2] == "rules" and parts[3].endswith(".rules.yaml")))


def receivers(ctx: ModelContext | ModelSpec) -> dict[str, Any]:
    s = ctx if isinstance(ctx, ModelSpec) else ctx.spec
    undo = f"kubectl argo rollouts undo {s.rollout} -n {s.namespace}"
    team_pager = s.team.pagerduty_routing_key
    u = undo_of(s)
    return {
        "undo": f"{s.name}-auto-undo" if u else "",
        "undo_url": u.url if u else "",
        "undo_token": s.release.auto_undo.token if s.release.auto_undo else None,
        "undo_token_file": (f"{SECRETS_DIR}/{s.release.auto_undo.token.name}/{s.release.auto_undo.token.key}"
                            if s.release.auto_undo else ""),
        "version_label": s.prometheus.version_label,
        "null": f"{s.name}-none",
        "team_pager": f"{s.name}-team-pager" if team_pager else "",
        "team_pager_file": f"{SECRETS_DIR}/{team_pager.name}/{team_pager.key}" if team_pager else "",
        "team_pager_secret": team_pager,
        "model": s.name, "namespace": s.namespace,
        "team": f"{s.name}-team", "authority": f"{s.name}-rollback-authority", "freeze": f"{s.name}-freeze",
        "channel": s.team.slack_channel,
        "slack_file": f"{SECRETS_DIR}/{s.team.slack_webhook.name}/{s.team.slack_webhook.key}",
        "pager_file": f"{SECRETS_DIR}/{s.authority.pagerduty_routing_key.name}/"
                      f"{s.authority.pagerduty_routing_key.key}",
        "freeze_url": s.freeze.webhook_url,
        "freeze_token_file": f"{SECRETS_DIR}/{s.freeze.webhook_token.name}/{s.freeze.webhook_token.key}",
        "slack_title": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} "
                       "{{ .CommonLabels.model }} {{ .CommonLabels.signal }}",
        "slack_text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\n"
                      "Runbook: {{ .Annotations.runbook_url }}\n{{ end }}",
        # PagerDuty severity from the alerts' own: critical for an automatic breach (auto, drift), else warning.
        "pager_severity": '{{ if eq .CommonLabels.severity "critical" }}critical{{ else }}warning{{ end }}',
        "pager_description": "{{ .CommonLabels.model }}: {{ .CommonLabels.alertname }} {{ .CommonLabels.signal }} "
                             f"({{{{ .CommonLabels.rollback }}}}): rollback decision by {s.authority.name}. "
                             f"Undo a completed rollout: {undo}",
    }


def alertmanager(env: jinja2.Environment, ctx: ModelContext) -> Files:
    text = _render(env, "alertmanager/alertmanagerconfig.yaml.j2", ctx=ctx, am=receivers(ctx),
                   header=header(_sources(ctx)).rstrip("\n"))
    return {f"{OUT}/alertmanager/{ctx.spec.name}.yaml": text}


def plan(env: jinja2.Environment, ctx: ModelContext) -> Files:
    pictures = render_pictures(ctx, ctx.evidence)
    links = {row.signal.name: picture_path(ctx.spec.name, row.signal.name).removeprefix(f"{OUT}/plans/")
             for row in ctx.rows if picture_path(ctx.spec.name, row.signal.name) in pictures}
    text = _render(env, "plan/plan.md.j2", ctx=ctx, pictures=links, audit=audit(ctx),
                   header=header(_sources(ctx), "<!--").rstrip("\n"))
    return {f"{OUT}/plans/{ctx.spec.name}.md": text, **pictures}


def alertmanager_config(env: jinja2.Environment, contexts: list[ModelContext]) -> Files:
    return alertmanager_shared(env, [(receivers(c), _sources(c)) for c in contexts])


def alertmanager_shared(env: jinja2.Environment, models: list[tuple[dict[str, Any], list[str]]]) -> Files:
    """The shared ``alertmanager.yml`` from each model's receivers and sources (in spec order)."""
    sources = [s for _, srcs in sorted(models, key=lambda m: m[0]["model"]) for s in srcs]
    text = _render(env, "alertmanager/alertmanager.yml.j2", models=[am for am, _ in models],
                   header=header(sources).rstrip("\n"))
    return {f"{OUT}/alertmanager/alertmanager.yml": text}


RENDERERS: dict[str, Callable[[jinja2.Environment, ModelContext], Files]] = {
    "alertmanager": alertmanager,
    "argo": argo,
    "argo_events": argo_events,
    "plan": plan,
    "prometheus": prometheus,
    "rollout": rollout,
    "terraform": terraform,
}


def render_model(env: jinja2.Environment, ctx: ModelContext) -> Files:
    """Every file of one model (the shared Alertmanager configuration aside)."""
    files: Files = {}
    for name in sorted(RENDERERS):
        if name != "terraform":
            files.update(RENDERERS[name](env, ctx))
    files.update(terraform(env, ctx, files))  # from the YAML just rendered, not a second rendering
    return dict(sorted(files.items()))


def render_all(contexts: list[ModelContext], shared: bool = True) -> Files:
    env = environment()
    files: Files = {}
    for ctx in sorted(contexts, key=lambda c: c.spec.name):
        files.update(render_model(env, ctx))
    if contexts and shared:
        files.update(alertmanager_config(env, contexts))
    return dict(sorted(files.items()))
