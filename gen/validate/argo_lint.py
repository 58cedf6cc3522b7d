"""Offline lint of Argo Rollouts AnalysisTemplates: the mistakes the cluster only reports mid-rollout.

The API server does not validate an AnalysisTemplate beyond its (pruning) schema; Argo Rollouts checks
the metrics when an AnalysisRun is created from it, that is, during a rollout, and several mistakes are
not errors at all but silently change what the gate does :

* a metric with no conditions *passes*; with only one, NaN or an empty result silently becomes a
  pass or a failure instead of Inconclusive: both ``successCondition`` and ``failureCondition``;
* ``result[0]`` on an empty vector is an evaluation error, and consecutive errors abort the rollout:
  an index needs a ``len(result) > 0`` guard before it (``&&`` evaluates left to right, and both
  conditions are always evaluated, so each condition needs its own guard);
* ``isNaN(result)`` on a vector is a type error: it must be ``isNaN(result[0])``;
* a step analysis without ``count`` never completes; ``count > 1`` needs ``interval``; ``count`` must
  cover ``failureLimit + consecutiveSuccessLimit`` (and ``inconclusiveLimit``, as Argo checks);
* ``interval``/``initialDelay`` are Go durations (no ``d`` unit); ``provider.prometheus.timeout`` is
  an integer number of seconds in the CRD (``int64``), not a duration string;
* exactly one provider per metric, unique non-empty metric names, at least one metric;
* ``{{args.NAME}}`` must name a declared argument (an unresolved tag fails the run); any other
  ``{{ }}``, ``{%`` or ``{#`` is a template-engine leftover;
* ``dryRun[].metricName`` and ``measurementRetention[].metricName`` are unanchored Go regexes that
  must compile and match a metric (Argo errors when a rule matches nothing);
* conditions and Prometheus queries must have balanced brackets.

Integer fields are int-or-string in the CRD (so that ``{{args.x}}`` can fill them): integers, digit
strings and whole-value ``{{args.x}}`` tags are accepted; a tag cannot be checked numerically.
Structural problems (types, unknown keys) are :mod:`driftgate.validate.crd`'s job; this module never raises
on malformed input, it lints what it can.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from driftgate.validate.crd import Located, compile_go_regex, parse_documents, render_problems
from driftgate.validate.durations import parse_go_duration

ANALYSIS_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_ARG_TAG = re.compile(r"\s*args\.([A-Za-z0-9_.-]+)\s*")
_WHOLE_ARG = re.compile(r"\{\{\s*args\.[A-Za-z0-9_.-]+\s*\}\}")
_INTEGER = re.compile(r"[-+]?\d+", re.ASCII)
_RESULT_INDEX = re.compile(r"\bresult\s*\[")
_LEN_GUARD = re.compile(r"\blen\s*\(\s*result\s*\)")
_BARE_ISNAN = re.compile(r"\bisNaN\s*\(\s*result\s*\)")
_DANGLING = re.compile(r"(<=|>=|==|!=|<|>)\s*($|\)|&&|\|\|)")
_NEGATION = re.compile(r"(^|[^=!<>])!\s*\(")
_NAN_GUARD = re.compile(r"isNaN\s*\(\s*result\s*\[\s*0\s*\]\s*\)")
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_CONDITIONS = ("successCondition", "failureCondition")
_NO_CONDITIONS = frozenset({"job"})  # the Job's own status decides; conditions are not evaluated

Path = tuple[str | int, ...]


def _metric_name(metric: Any) -> str | None:
    name = metric.get("name") if isinstance(metric, dict) else None
    return name if isinstance(name, str) and name else None


def _in_metric(metric: Any, path: Path, message: str) -> Located:
    name = _metric_name(metric)
    return (path, f"{message} (metric {name!r})" if name else message)


# ------------------------------------------------------------------------------------------ metrics


def _metric_list(spec: dict[str, Any]) -> tuple[list[Any], list[Located]]:
    metrics = spec.get("metrics")
    if metrics is None:
        metrics = []
    if not isinstance(metrics, list):
        return [], []  # a type error, reported by the CRD check
    if not metrics and not spec.get("templates"):
        return [], [(("spec", "metrics"), "at least one metric is required")]
    return metrics, []


def _name_problems(metrics: Sequence[Any]) -> Iterator[Located]:
    first: dict[str, int] = {}
    for i, metric in enumerate(metrics):
        name = metric.get("name") if isinstance(metric, dict) else None
        path: Path = ("spec", "metrics", i, "name")
        if not isinstance(name, str) or not name.strip():
            yield (path, "every metric needs a non-empty name")
        elif name in first:
            yield (path, f"duplicate metric name {name!r} (also spec.metrics[{first[name]}])")
        else:
            first[name] = i


def _providers(metric: dict[str, Any]) -> list[str]:
    provider = metric.get("provider")
    if not isinstance(provider, dict):
        return []
    return [str(key) for key, value in provider.items() if value is not None]


def _provider_problems(metric: dict[str, Any], path: Path) -> Iterator[Located]:
    found = _providers(metric)
    if len(found) != 1:
        detail = f"found {len(found)} ({', '.join(found)})" if found else "found none"
        yield _in_metric(metric, (*path, "provider"), f"exactly one provider is required, {detail}")


def _condition_problems(metric: dict[str, Any], path: Path) -> Iterator[Located]:
    if set(_providers(metric)) & _NO_CONDITIONS:
        return
    for field in _CONDITIONS:
        text = metric.get(field)
        where = (*path, field)
        if not isinstance(text, str) or not text.strip():
            yield _in_metric(metric, where, "missing: set both successCondition and failureCondition "
                             "(without conditions a metric passes; with one, NaN or an empty result "
                             "is decided instead of Inconclusive)")
            continue
        for message in condition_problems(text):
            yield _in_metric(metric, where, message)


def condition_problems(text: str) -> list[str]:
    """Problems with one expr-lang condition over ``result``."""
    out: list[str] = []
    code = _strip_strings(text)
    if _BARE_ISNAN.search(code):
        out.append("isNaN(result) is a bug: for a vector query result is a list; use isNaN(result[0])")
    index = _RESULT_INDEX.search(code)
    guard = _LEN_GUARD.search(code)
    if index and (guard is None or guard.start() > index.start()):
        out.append("indexes result[...] without a len(result) > 0 guard before it: an empty vector "
                   "is an evaluation error, and consecutive errors abort the rollout")
    if _DANGLING.search(code):
        out.append("a comparison has no right-hand side (a threshold that rendered empty?)")
    if index and _NEGATION.search(code) and not _NAN_GUARD.search(code):
        out.append("negates a comparison on result[0] without isNaN(result[0]): NaN compares false, so "
                   "!(...) turns NaN into true")
    bracket = bracket_problem(text)
    if bracket:
        out.append(bracket)
    return out


def _strip_strings(text: str) -> str:
    """``text`` with the contents of string literals blanked out (same length)."""
    out: list[str] = []
    quote = ""
    escaped = False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote != "`":
                escaped = True
            elif ch == quote:
                quote = ""
                out.append(ch)
                continue
            out.append(" ")
            continue
        if ch in "\"'`":
            quote = ch
        out.append(ch)
    return "".join(out)


def bracket_problem(text: str) -> str | None:
    """Why the brackets of an expression (expr-lang or PromQL) do not balance, or ``None``."""
    stack: list[tuple[str, int]] = []
    for pos, ch in enumerate(_strip_strings(text)):
        if ch in "([{":
            stack.append((ch, pos))
        elif ch in _CLOSERS:
            if not stack or stack[-1][0] != _CLOSERS[ch]:
                return f"unbalanced brackets: unexpected {ch!r} at character {pos + 1}"
            stack.pop()
    if stack:
        ch, pos = stack[-1]
        return f"unbalanced brackets: {ch!r} at character {pos + 1} is never closed"
    return None


def _query_problems(metric: dict[str, Any], path: Path) -> Iterator[Located]:
    provider = metric.get("provider")
    prometheus = provider.get("prometheus") if isinstance(provider, dict) else None
    if not isinstance(prometheus, dict):
        return
    base = (*path, "provider", "prometheus")
    query = prometheus.get("query")
    if isinstance(query, str):
        bracket = bracket_problem(query)
        if bracket:
            yield _in_metric(metric, (*base, "query"), bracket)
    timeout = prometheus.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0):
        yield _in_metric(metric, (*base, "timeout"), "must be a positive whole number of seconds (the CRD "
                         f"declares int64, not a Go duration), got {timeout!r}")


# ----------------------------------------------------------------------------------- counts, durations


def _is_arg_tag(value: Any) -> bool:
    return isinstance(value, str) and _WHOLE_ARG.fullmatch(value.strip()) is not None


def _int_field(value: Any) -> tuple[int | None, bool]:
    """``(integer, valid)`` for an int-or-string field; ``(None, True)`` when absent or ``{{args.x}}``."""
    if value is None or _is_arg_tag(value):
        return None, True
    if isinstance(value, int) and not isinstance(value, bool):
        return value, True
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value), True
    return None, False


def _limits(metric: dict[str, Any], path: Path) -> tuple[dict[str, int | None], list[Located]]:
    values: dict[str, int | None] = {}
    out: list[Located] = []
    for field in ("count", "failureLimit", "consecutiveSuccessLimit", "inconclusiveLimit",
                  "consecutiveErrorLimit"):
        values[field], valid = _int_field(metric.get(field))
        if not valid:
            out.append(_in_metric(metric, (*path, field), "expected an integer, a digit string or "
                                  f"{{{{args.NAME}}}}, got {metric.get(field)!r}"))
    return values, out


def _count_problems(metric: dict[str, Any], path: Path, background: bool) -> Iterator[Located]:
    values, problems = _limits(metric, path)
    yield from problems
    count = values["count"]
    if metric.get("count") is None and not background:
        yield _in_metric(metric, (*path, "count"), "missing: a step analysis never completes without count")
    if metric.get("count") is None and background and not metric.get("interval"):
        yield _in_metric(metric, (*path, "interval"), "missing: a background metric without count needs an "
                                                      "interval, or it is measured once and stops guarding")
    for field, minimum in (("count", 1), ("failureLimit", -1), ("consecutiveSuccessLimit", 0),
                           ("inconclusiveLimit", 0), ("consecutiveErrorLimit", 0)):
        value = values[field]
        if value is not None and value < minimum:
            yield _in_metric(metric, (*path, field), f"must be >= {minimum}, got {value}")
    failure, successes = values["failureLimit"], values["consecutiveSuccessLimit"]
    if failure == -1 and not successes:
        yield _in_metric(metric, (*path, "failureLimit"),
                         "-1 disables failureLimit only together with consecutiveSuccessLimit > 0")
    if count is None:
        return
    if count > 1 and not metric.get("interval"):
        yield _in_metric(metric, (*path, "interval"), f"missing: required when count > 1 (count is {count})")
    needed = max(failure or 0, 0) + (successes or 0)
    if count < needed:
        yield _in_metric(metric, (*path, "count"), f"must be >= failureLimit + consecutiveSuccessLimit "
                         f"({needed}), got {count}")
    inconclusive = values["inconclusiveLimit"]
    if inconclusive is not None and count < inconclusive:
        yield _in_metric(metric, (*path, "count"),
                         f"must be >= inconclusiveLimit ({inconclusive}), got {count}")


def _duration_problems(metric: dict[str, Any], path: Path) -> Iterator[Located]:
    for field in ("interval", "initialDelay"):
        value = metric.get(field)
        if value is None or _is_arg_tag(value):
            continue
        if not isinstance(value, str):
            yield _in_metric(metric, (*path, field), f"expected a Go duration such as '5m', got {value!r}")
            continue
        try:
            seconds = parse_go_duration(value)
        except ValueError as exc:
            yield _in_metric(metric, (*path, field), str(exc))
            continue
        if field == "interval" and seconds <= 0:
            yield _in_metric(metric, (*path, field), f"must be positive, got {value!r}")


# ----------------------------------------------------------------------------------------- templating


def _strings(node: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, (*path, i))


def _template_problems(metric: Any, path: Path, declared: set[str]) -> Iterator[Located]:
    for where, text in _strings(metric, path):
        for message in template_problems(text, declared):
            yield _in_metric(metric, where, message)


def template_problems(text: str, declared: set[str]) -> list[str]:
    """Undeclared ``{{args.NAME}}`` references and template-engine leftovers in one string."""
    out: list[str] = []
    for match in _TAG.finditer(text):
        arg = _ARG_TAG.fullmatch(match.group(1))
        if arg is None:
            out.append(f"template leftover {match.group(0)!r}: Argo only substitutes {{{{args.NAME}}}}")
        elif arg.group(1) not in declared:
            out.append(f"argument {arg.group(1)!r} is not declared in spec.args")
    rest = _TAG.sub("", text)
    for token in ("{{", "{%", "{#"):
        if token in rest:
            out.append(f"template leftover {token!r}")
    return list(dict.fromkeys(out))


def _declared_args(spec: dict[str, Any]) -> tuple[set[str], list[Located]]:
    args = spec.get("args")
    names: set[str] = set()
    out: list[Located] = []
    for i, arg in enumerate(args if isinstance(args, list) else []):
        name = arg.get("name") if isinstance(arg, dict) else None
        if not isinstance(name, str) or not name:
            continue
        if name in names:
            out.append((("spec", "args", i, "name"), f"duplicate argument {name!r}"))
        names.add(name)
    return names, out


# ---------------------------------------------------------------------------------- dryRun/retention


def _selector_problems(spec: dict[str, Any], field: str, names: list[str]) -> Iterator[Located]:
    rules = spec.get(field)
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        pattern = rule.get("metricName") if isinstance(rule, dict) else None
        if not isinstance(pattern, str):
            continue
        where: Path = ("spec", field, i, "metricName")
        compiled = compile_go_regex(pattern)
        if compiled is None:
            yield (where, f"{pattern!r} is not a valid regular expression")
        elif not any(compiled.search(name) for name in names):
            yield (where, f"regex {pattern!r} matches no metric (metrics: {', '.join(names) or 'none'})")


# --------------------------------------------------------------------------------------------- public


def _metric_problems(metric: Any, path: Path, declared: set[str], background: bool) -> Iterator[Located]:
    if not isinstance(metric, dict):
        return  # a type error, reported by the CRD check
    yield from _provider_problems(metric, path)
    yield from _condition_problems(metric, path)
    yield from _query_problems(metric, path)
    yield from _count_problems(metric, path, background)
    yield from _duration_problems(metric, path)
    yield from _template_problems(metric, path, declared)


USAGE_ANNOTATION = "driftgate.io/analysis"  # "background" (runs until the rollout completes) or "step"


def lint_analysis_template(obj: Any, background: bool | None = None) -> list[str]:
    """Problems with one AnalysisTemplate or ClusterAnalysisTemplate, as ``path: message`` strings.

    Paths name ``spec.metrics[i]`` and messages end with the metric's name. Empty when clean. A
    template used as background analysis (``background``, or annotated ``driftgate.io/analysis:
    background``) may leave out ``count``: it then measures every ``interval`` until the rollout
    completes; a step analysis needs ``count`` to complete.
    """
    if background is None:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        notes = meta.get("annotations") if isinstance(meta, dict) else None
        background = isinstance(notes, dict) and notes.get(USAGE_ANNOTATION) == "background"
    spec = obj.get("spec") if isinstance(obj, dict) else None
    if not isinstance(spec, dict):
        return ["spec: missing; an AnalysisTemplate needs spec.metrics"]
    metrics, problems = _metric_list(spec)
    problems += _name_problems(metrics)
    declared, arg_problems = _declared_args(spec)
    problems += arg_problems
    for i, metric in enumerate(metrics):
        problems += _metric_problems(metric, ("spec", "metrics", i), declared, background)
    names = list(dict.fromkeys(name for name in map(_metric_name, metrics) if name))
    for field in ("dryRun", "measurementRetention"):
        problems += _selector_problems(spec, field, names)
    return render_problems(obj, problems)


def lint_documents(text: str, source: str) -> list[str]:
    """:func:`lint_analysis_template` for each (Cluster)AnalysisTemplate in a multi-document YAML text.

    Other kinds are skipped. Messages read ``<source>: document <index>: <path>: <message>``.
    """
    docs, problems = parse_documents(text, source)
    for index, doc in docs:
        if isinstance(doc, dict) and doc.get("kind") in ANALYSIS_KINDS:
            problems += [f"{source}: document {index}: {m}" for m in lint_analysis_template(doc)]
    return problems

