"""A JSON Schema (draft 2020-12) of a model spec, for editors (``driftgate schema``).

It gives completion, types, enums and unknown-key warnings while a spec is written (VS Code's YAML
extension: ``# yaml-language-server: $schema=<path>``). The loader (:mod:`driftgate.spec.load`) stays the
authority: it checks what a schema cannot (budgets against each other, windows against the horizon,
names against PromQL and Kubernetes, secrets never inline); every spec the loader accepts validates
against this schema (tests/test_schema.py), and the key sets come from the loader's own constants.
"""

from __future__ import annotations

import json
from typing import Any

from driftgate import model as m
from driftgate.spec import load as ld
from driftgate.spec import names

DURATION = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$",
            "description": "Prometheus duration, e.g. 15m, 1h, 1h30m"}
SECRET = {"type": "object", "additionalProperties": False, "required": ["secret", "key"],
          "properties": {"secret": {"type": "string"}, "key": {"type": "string"}},
          "description": "a Kubernetes Secret reference; secrets are never written in a spec"}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
EXCLUDE = {"type": "array", "description": "spans of the history that are not normal (incidents): left out of the fit",
           "items": {"type": "object", "additionalProperties": False, "required": ["from", "reason", "to"],
                     "properties": {"from": {"type": "string", "description": "RFC 3339 time with a time zone"},
                                    "reason": {"type": "string", "minLength": 1},
                                    "to": {"type": "string", "description": "RFC 3339 time with a time zone"}}}}


def _obj(props: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": sorted(required),
            "properties": dict(sorted(props.items())), **extra}


def _enum(values: list[str], default: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "enum": values}
    if default is not None:
        out["default"] = default
    return out


def _signal(kind: m.SignalKind) -> dict[str, Any]:
    number = {"type": "number"}
    side = {"type": "object", "minProperties": 1, "additionalProperties": {"oneOf": [
        {"type": "string", "minLength": 1}, _obj({"regex": {"type": "string"}}, ("regex",))]}}
    known: dict[str, Any] = {
        "name": {"type": "string", "pattern": names.SIGNAL_NAME.pattern},
        "kind": {"const": kind.value},
        "labels": LABELS,
        "windows": _obj({"fast": DURATION, "slow": DURATION}, ("fast", "slow")),
        "direction": _enum([d.value for d in m.Direction]),
        "tier": _enum([t.value for t in m.Tier], "auto"),
        "min_events": {"type": "integer", "minimum": 1, "default": 200},
        "no_data": _enum([n.value for n in m.NoData], "inconclusive"),
        "threshold": _obj({"auto": number, "manual": number}),
        "description": {"type": "string"},
        "metric": {"type": "string", "pattern": names.METRIC_NAME.pattern},
        "numerator": {"type": "string", "pattern": names.METRIC_NAME.pattern},
        "denominator": {"type": "string", "pattern": names.METRIC_NAME.pattern},
        "numerator_labels": side, "denominator_labels": side,
        "statistic": _enum(list(ld.DRIFT_STATISTICS), "psi"),
        "compare_with": _enum(list(ld.COMPARE_WITH if kind is m.SignalKind.DISTRIBUTION_DRIFT
                                   else ld.COMPARE_WITH_NOT_DRIFT), "baseline"),
        "quantile": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.9999},
    }
    keys = ld.COMMON_SIGNAL_KEYS | ld.KIND_KEYS[kind]
    assert keys <= set(known), keys - set(known)
    return _obj({k: known[k] for k in keys}, tuple({"name", "kind"} | ld.KIND_REQUIRED[kind]))


def schema() -> dict[str, Any]:
    budget = {"type": "string", "pattern": names.BUDGET.pattern, "description": "events per period, e.g. 1/quarter"}
    credential = _obj({"env": {"type": "string"}, "file": {"type": "string"}}, minProperties=1, maxProperties=1)
    props: dict[str, Any] = {
        "model": {"type": "string", "pattern": names.MODEL_NAME.pattern},
        "namespace": {"type": "string", "pattern": names.DNS_LABEL.pattern},
        "rollout": {"type": "string", "pattern": names.DNS_LABEL.pattern},
        "team": _obj({"name": {"type": "string"}, "slack_channel": {"type": "string"}, "slack_webhook": SECRET,
                      "pagerduty_routing_key": SECRET}, ("name", "slack_channel", "slack_webhook")),
        "rollback_authority": _obj({"name": {"type": "string"}, "contact": {"type": "string"},
                                    "pagerduty_routing_key": SECRET}, ("name", "contact", "pagerduty_routing_key")),
        "prometheus": _obj({
            "address": {"type": "string", "format": "uri"},
            "selector": {**LABELS, "minProperties": 1},
            "version_label": {"type": "string", "default": "rollouts_pod_template_hash"},
            "version_from": {"oneOf": [{"const": "pod_template_hash"},
                                       _obj({"pod_label": {"type": "string"}}, ("pod_label",))]},
            "evaluation_interval": DURATION,
            "rollout_info_namespace_label": {"type": "string", "default": "exported_namespace"},
            "auth": _obj({"bearer_token": credential,
                          "basic": _obj({"username": {"type": "string"}, "password": credential},
                                        ("username", "password")),
                          "headers": LABELS}, minProperties=1),
            "analysis_auth": _obj({"headers": LABELS, "bearer_token": SECRET}, minProperties=1),
        }, ("address", "selector")),
        "budget": _obj({"auto": budget, "manual": budget}, ("auto",)),
        "history": _obj({"minimum": DURATION, "exports": {"type": "array", "minItems": 1,
                                                          "items": {"type": "string"}},
                         "exclude": EXCLUDE, "exclude_file": {"type": "string", "minLength": 1}}, ("exports",)),
        "freeze": _obj({"window": DURATION, "lifted_until": {"type": "string"},
                        "webhook": _obj({"url": {"type": "string"}, "token": SECRET}, ("url", "token"))},
                       ("window", "webhook")),
        "analysis": _obj({"interval": DURATION, "failure_limit": {"type": "integer", "minimum": 0, "maximum": 100},
                          "inconclusive_limit": {"type": "integer", "minimum": 0, "maximum": 100},
                          "consecutive_error_limit": {"type": "integer", "minimum": 0, "maximum": 100},
                          "canary_weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                          "dry_run": {"type": "boolean", "default": False}}),
        "release": _obj({"horizon": DURATION, "bake": DURATION, "auto_undo": {"oneOf": [
            {"const": False},
            _obj({"enabled": {"type": "boolean", "default": True}, "token": SECRET,
                  "namespace": {"type": "string"}, "event_bus": {"type": "string"},
                  "image": {"type": "string"}, "kubectl_image": {"type": "string"}}, ("token",))]}}),
        "runbook_base_url": {"type": "string"},
        "object_labels": LABELS,
        "object_annotations": LABELS,
        "signals": {"type": "array", "minItems": 1, "maxItems": ld.MAX_SIGNALS,
                    "items": {"oneOf": [_signal(k) for k in m.SignalKind]}},
    }
    assert set(props) == ld.TOP_KEYS, set(props) ^ ld.TOP_KEYS
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://driftgate.dev/schema/spec.json", "title": "driftgate model spec",
            **_obj(props, tuple(ld.TOP_REQUIRED))}


def dumps() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"
