"""The spec's fit inputs: what a baseline was fitted for, recorded in it and compared with the spec."""

from __future__ import annotations

import json

from driftgate.baseline import rfc3339
from driftgate.model import ModelSpec, SignalKind
from driftgate.validate.durations import prom_duration


def fit_inputs(spec: ModelSpec) -> dict[str, str]:
    """Everything in the spec a fit depends on, flat, keyed by the spec's key path; values as text
    (strings as they are, numbers and mappings as JSON).

    The one notion of "fit inputs": the baseline records it, :func:`input_hash` hashes it (with the
    exports' bytes), and render, check, validate and review refuse or report a baseline whose recorded
    inputs differ from the spec's (:func:`driftgate.render.context.check_baseline`)."""
    def j(value: object) -> str:  # the key fixes the type: strings as they are, the rest as JSON
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

    out = {
        "prometheus.selector": j(dict(spec.prometheus.selector)),
        # Not used by the numbers, but by the data contract the fit checks (driftgate.fit.signals.check_contract).
        "prometheus.version_label": spec.prometheus.version_label,
        "prometheus.version_from": (f"pod_label {spec.prometheus.version_pod_label}"
                                    if spec.prometheus.version_pod_label else "pod_template_hash"),
        "alerts.for": prom_duration(spec.alert_for_seconds),  # from prometheus.evaluation_interval
        "budget.auto": j(spec.budget.text),
        "budget.manual": j(spec.manual_budget.text),
        "history.minimum": prom_duration(int(spec.min_history.seconds)),
        "analysis.canary_weight": j(spec.analysis.canary_weight),
    }
    if spec.exclude:  # (absent when empty: the baselines fitted before the key existed stay current)
        out["history.exclude"] = j([{"from": rfc3339(x.start), "to": rfc3339(x.end), "reason": x.reason}
                                    for x in spec.exclude])
    for s in spec.signals:
        p = f"signals.{s.name}."
        ratio = not s.is_histogram
        out.update({
            p + "kind": j(s.kind.value), p + "statistic": j(s.statistic.value),
            p + ("numerator" if ratio else "metric"): j(s.metric),
            p + "matchers": j(dict(s.matchers)),
            p + "windows": j({"fast": s.windows.fast.text, "slow": s.windows.slow.text}),
            p + "direction": j(s.direction.value), p + "tier": j(s.tier.value),
            p + "min_events": j(s.min_events),
        })
        if ratio:
            out[p + "denominator"] = j(s.denominator)
            for side, more in (("numerator_labels", s.numerator_matchers), ("denominator_labels",
                                                                            s.denominator_matchers)):
                if more:  # (absent when empty: baselines fitted before the key existed stay current)
                    out[p + side] = j({label: (v if op == "=" else {"regex": v}) for label, op, v in more})
        if s.kind is SignalKind.LATENCY_QUANTILE:
            out[p + "quantile"] = j(s.quantile)
        out[p + "compare_with"] = j(s.compare_with)
    return dict(sorted(out.items()))
