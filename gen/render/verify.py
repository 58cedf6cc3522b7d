"""Check rendered files in memory before any is written: a bad render never reaches the tree.

YAML must parse; every AnalysisTemplate passes the offline Argo lint; Kubernetes objects validate
strictly against the upstream CRD schemas when a CRD directory is available (``--crds DIR``,
``$DRIFTGATE_CRDS`` or the repository's ``crds/``; see :func:`driftgate.validate.crd.locate`);
Terraform must parse with python-hcl2. When no CRD schemas are available, or they lack a kind that
was rendered, a warning says what was not validated (``--strict`` turns it into a failure).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import hcl2

from driftgate.errors import Problem, RenderError
from driftgate.render.plots import PNG_SIGNATURE
from driftgate.validate import argo_lint, crd


def _stub(target: dict[str, Any]) -> dict[str, Any]:
    """The smallest valid object of a patch's target kind (only Rollouts are patched)."""
    name = str(target.get("name", "x"))
    labels = {"app.kubernetes.io/name": name}
    return {"apiVersion": f"{target.get('group')}/{target.get('version')}", "kind": target.get("kind"),
            "metadata": {"name": name, "namespace": str(target.get("namespace", "default"))},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": name, "image": "registry.example/model:1"}]}},
                     "strategy": {"canary": {}}}}


def _add(obj: dict[str, Any], pointer: str, value: Any) -> None:
    """JSON 6902 ``add`` of an object member (the only operation driftgate's patches use)."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node = obj
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = copy.deepcopy(value)


def patched_stubs(component: dict[str, Any]) -> list[dict[str, Any]]:
    """Each JSON 6902 patch of a kustomize Component applied to a stub of its target, for schema checks."""
    out = []
    for entry in component.get("patches") or []:
        docs, problems = crd.parse_documents(entry.get("patch") or "[]", "a patch")  # the C loader, duplicates
        if problems:
            raise RenderError(f"a generated Component's patch is not valid YAML: {'; '.join(problems)}")
        ops = docs[0][1] if docs else []
        obj = _stub(entry.get("target") or {})
        for op in ops:
            if op.get("op") != "add":
                raise RenderError(f"unexpected patch operation {op.get('op')!r} in a generated Component")
            _add(obj, op["path"], op["value"])
        out.append(obj)
    return out


def _hcl_problem(rel: str, text: str) -> str | None:
    try:
        hcl2.loads(text)
    except Exception as exc:  # python-hcl2 raises lark errors of several types
        return f"{rel}: not valid HCL: {exc}"
    return None


def parse_terraform(files: Mapping[str, str | bytes]) -> None:
    """Parse every ``.tf`` file with python-hcl2; raise :class:`RenderError` listing those that do not."""
    problems = [p for rel, text in files.items() if rel.endswith(".tf") and isinstance(text, str)
                if (p := _hcl_problem(rel, text)) is not None]
    if problems:
        raise RenderError("the rendered output failed validation; nothing was written:\n  "
                          + "\n  ".join(problems), hint="this is a driftgate bug unless a template was edited")


def verify(files: Mapping[str, str | bytes], source: crd.Source | None = None,
           warnings: list[Problem] | None = None, parse_hcl: bool = True,
           unvalidated_out: set[str] | None = None, emitted: Callable[[str], bool] | None = None) -> None:
    """Raise :class:`RenderError` listing every problem; append what could not be checked to ``warnings``.

    ``parse_hcl=False``: the Terraform files are not parsed here (python-hcl2 takes ~1 s a file); a fleet
    render parses one model's (:func:`parse_terraform`): the templates are the same for every model, and
    every value reaches HCL through the ``hcl``/``hcl_str`` filters, whose escaping the tests fuzz.

    ``emitted(rel)`` true: a YAML file built from data already checked (:func:`driftgate.render.targets.emitted`:
    the promtool test, dumped by PyYAML; the plain rule file, the PrometheusRule's own groups), not parsed again."""
    problems: list[str] = []
    directory = source.directory if source is not None else None
    known = {e.kind for e in crd.known_versions(directory)} if directory is not None else set()
    unvalidated: set[str] = set()
    for rel, text in files.items():
        if isinstance(text, bytes):
            if rel.endswith(".png") and not text.startswith(PNG_SIGNATURE):
                problems.append(f"{rel}: not a PNG")
            continue
        if not text.endswith("\n"):
            problems.append(f"{rel}: does not end with a newline")
        if rel.endswith((".yaml", ".yml")) and not (emitted is not None and emitted(rel)):
            parsed, invalid = crd.parse_documents(text, rel)  # the C loader; duplicate keys reported
            if invalid:
                problems.extend(invalid)
                continue
            for i, (_, doc) in enumerate(parsed):
                if not isinstance(doc, dict) or "kind" not in doc:
                    continue
                if str(doc.get("apiVersion", "")).startswith("kustomize.config.k8s.io/"):
                    for j, obj in enumerate(patched_stubs(doc)):
                        if obj["kind"] in known:
                            problems.extend(f"{rel}[{i}].patches[{j}] (applied to a Rollout): {m}"
                                            for m in crd.validate(obj, directory))
                        else:
                            unvalidated.add(f"{obj['apiVersion']} {obj['kind']}")
                    continue
                if doc["kind"] == "AnalysisTemplate":
                    problems.extend(f"{rel}[{i}]: {m}" for m in argo_lint.lint_analysis_template(doc))
                if "apiVersion" not in doc:
                    continue
                if doc["kind"] in known:
                    problems.extend(f"{rel}[{i}]: {m}" for m in crd.validate(doc, directory))
                else:
                    unvalidated.add(f"{doc.get('apiVersion')} {doc['kind']}")
                for path, embedded in crd.embedded_resources(doc):  # the Job an Argo Events Sensor creates
                    if embedded.get("kind") in known:
                        problems.extend(f"{rel}[{i}].{crd.format_path(path)} (created by the Sensor): {m}"
                                        for m in crd.validate(embedded, directory))
                    else:
                        unvalidated.add(f"{embedded.get('apiVersion')} {embedded.get('kind')}")
        elif rel.endswith(".tf") and parse_hcl and (problem := _hcl_problem(rel, text)) is not None:
            problems.append(problem)
    if problems:
        raise RenderError("the rendered output failed validation; nothing was written:\n  "
                          + "\n  ".join(problems), hint="this is a driftgate bug unless a template was edited")
    if unvalidated_out is not None:  # the caller merges several verifications into one warning
        unvalidated_out.update(unvalidated)
        return
    warning = unvalidated_warning(source, unvalidated)
    if warnings is not None and warning is not None:
        warnings.append(warning)


def unvalidated_warning(source: crd.Source | None, unvalidated: set[str]) -> Problem | None:
    """The one warning saying which rendered objects no schema validated (None: every one was)."""
    if not unvalidated:
        return None
    if source is None or source.directory is None:
        message = (source or crd.Source(None, "no CRD directory was given")).skipped()
        where = "generated"
    else:
        message = (f"no CRD there ({source.origin}) declares {', '.join(sorted(unvalidated))}: "
                   "those objects were not validated against a schema")
        where = str(source.directory)
    return Problem(where, 0, 0, "", message, level="warning")
