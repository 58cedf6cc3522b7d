"""Name and value grammars for everything that reaches Kubernetes, PromQL, HCL or YAML.

Names are *rejected* when they do not match a conservative grammar (a name is an identifier,
not free text); free text (descriptions, contacts) is *escaped* by the renderers instead.
"""

from __future__ import annotations

import re

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# A model name also starts Terraform resource names (``<model>_rollback_criteria``), which must begin
# with a letter or an underscore: a DNS-1123 label that starts with a letter.
MODEL_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
SIGNAL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$")
# Words PromQL's lexer reads as keywords or number literals wherever a metric name can stand (case-insensitive:
# ``Bool`` and ``INF`` too), so ``max_over_time(bool{...}[5m])`` does not parse. Found with promtool (Prometheus
# 2.42 and 3.x) over every keyword, aggregator and function name; tests/test_names_promql.py re-checks the list
# against both promtools. Aggregators and functions (``sum``, ``rate``) do parse as metric names there.
PROMQL_RESERVED = frozenset({"atan2", "bool", "group_left", "group_right", "ignoring", "on", "nan", "inf"})
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
# A host is dot-separated DNS labels (or an IPv4 address); a port is 1..65535, as Go's net/url and every
# consumer (Alertmanager, Argo Rollouts, Terraform providers) read it.
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
URL = re.compile(rf"^https?://{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?(:{_PORT})?(/[A-Za-z0-9._~/\-]*)?$", re.ASCII)
# A container image reference with a tag or a digest (docker/distribution's grammar, lowercase repository
# path components; an untagged image would silently float to :latest).
_IMAGE_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE = re.compile(rf"^(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*(?::{_PORT})?/)?{_IMAGE_PART}(?:/{_IMAGE_PART})*"
                   r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(?:@sha256:[a-f0-9]{64})?|@sha256:[a-f0-9]{64})$", re.ASCII)
SLACK_CHANNEL = re.compile(r"^[#@][a-z0-9][a-z0-9._\-]{0,79}$")
BUDGET = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*(day|week|month|quarter|year)\s*$", re.ASCII)

BUDGET_PERIODS = {
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "quarter": 90 * 86400,
    "year": 365 * 86400,
}

# Labels driftgate sets itself on rules and alerts; a spec matcher may not use them.
RESERVED_LABELS = frozenset({"__name__", "le", "model", "signal", "window", "severity", "rollback", "shadow",
                             "team", "alertname", "alertstate"})

# Free text (descriptions, contact lines) may contain anything printable except these.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\x85]")
# Not characters at all: unpaired UTF-16 surrogates (a YAML escape such as "\ud83d" yields one) and the
# non-characters U+FFFE/U+FFFF. They cannot be written as UTF-8, and YAML and Go readers reject or
# mangle them, so a rendered file would not parse back to the value in the spec.
_NOT_CHARACTERS = re.compile(r"[\ud800-\udfff\ufffe\uffff]")
# C1 control characters (U+0080..U+009F, except NEL above): YAML readers refuse them unescaped.
_C1 = re.compile(r"[\x80-\x84\x86-\x9f]")
# Bidirectional embedding, override and isolate controls: they reorder how the text around them is shown, so a
# reviewer reads something other than what is rendered ("Trojan Source", CVE-2021-42574).
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
MAX_TEXT = 500


def check_text(value: str, multiline: bool = False) -> str | None:
    """Return a problem description for free text, or None when it is acceptable."""
    if len(value) > MAX_TEXT:
        return f"at most {MAX_TEXT} characters, got {len(value)}"
    if _CONTROL.search(value) or _C1.search(value):
        return "control characters are not allowed"
    if _BIDI.search(value):
        found = _BIDI.search(value).group(0)  # type: ignore[union-attr]  # just matched
        return (f"the bidirectional control U+{ord(found):04X} is not allowed: it changes how the text around it "
                f"is displayed, so a reviewer would not see what is rendered")
    if _NOT_CHARACTERS.search(value):
        return "unpaired UTF-16 surrogates and the non-characters U+FFFE, U+FFFF are not allowed"
    if not multiline and "\n" in value:
        return "a single line is expected"
    for opener, what in (("${", "an interpolation"), ("%{", "a template directive")):
        if opener in value:
            # Escaped as $${ / %%{ it would be correct Terraform, but python-hcl2 (which checks every
            # rendered .tf file) rejects an escaped opener without its closing brace: refused instead.
            return f"'{opener}' is not allowed: Terraform reads it as the start of {what}"
    return None


def check_label_value(value: str) -> str | None:
    """A label value to match on: free text, and no invisible character (a zero-width space, a no-break
    space, a joiner): the series it selects would differ from the one the reader of the spec sees."""
    import unicodedata

    from driftgate.errors import is_invisible

    for i, ch in enumerate(value):
        if is_invisible(ch):
            what = unicodedata.name(ch, "unnamed")
            return (f"the invisible character U+{ord(ch):04X} ({what}) at position {i + 1} is not allowed in a "
                    f"label value: the series selected would not be the one a reader sees")
    return check_text(value)


def check_template_text(value: str) -> str | None:
    """Free text that is also embedded in Go templates (Prometheus annotations, Alertmanager
    notification texts): ``{{`` would start a template action there and break or change the text."""
    if "{{" in value:
        return ("'{{' is not allowed: Prometheus and Alertmanager would read it as the start of a template "
                "action")
    return check_text(value)


_USERINFO = re.compile(r"(?<=//)[^/?#@]*@")


def without_userinfo(url: str) -> str:
    """A URL as a message may show it: credentials written into it (``//user:password@``) replaced."""
    return _USERINFO.sub("<credentials redacted>@", url)


def check_metric_name(value: str) -> str | None:
    """A metric name that matches the grammar but that PromQL reads as a keyword or a number."""
    if value.lower() in PROMQL_RESERVED:
        return (f"{value!r} cannot be a metric name in PromQL: the query language reads it as a keyword or a "
                f"number ({', '.join(sorted(PROMQL_RESERVED))}, in any case); rename the metric with a "
                f"recording rule or relabelling")
    return None


def describe_grammar(pattern: re.Pattern[str]) -> str:
    return {
        DNS_LABEL: "a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)",
        MODEL_NAME: "a DNS-1123 label that starts with a letter (lowercase letters, digits and '-', at most 63 "
                    "characters; it also names Terraform resources)",
        SIGNAL_NAME: "a signal name matching [a-z][a-z0-9_]* (at most 40 characters)",
        METRIC_NAME: "a Prometheus metric name matching [a-zA-Z_:][a-zA-Z0-9_:]*",
        LABEL_NAME: "a Prometheus label name matching [a-zA-Z_][a-zA-Z0-9_]*",
        SECRET_KEY: "a Secret key (letters, digits, '-', '_', '.')",
        URL: "an http(s) URL (a DNS name or IPv4 host, an optional port 1-65535, a path) without credentials, "
             "query or fragment",
        SLACK_CHANNEL: "a Slack channel like '#team-alerts'",
        IMAGE: "a container image with a tag or a digest, like 'quay.io/argoproj/kubectl-argo-rollouts:v1.10.1' "
               "(an untagged image would float to :latest)",
    }.get(pattern, pattern.pattern)
