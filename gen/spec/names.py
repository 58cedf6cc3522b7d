"""Name and value grammars for everything that reaches Kubernetes, PromQL, HCL or YAML.

Names are *rejected* when they do not match a conservative grammar (a name is an identifier,
not free text); free text (descriptions, contacts) is *escaped* by the renderers instead.
"""

from __future__ import annotations

import re

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SIGNAL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
URL = re.compile(r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/\-]*)?$")
SLACK_CHANNEL = re.compile(r"^[#@][a-z0-9][a-z0-9._\-]{0,79}$")
BUDGET = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*(day|week|month|quarter|year)\s*$")

BUDGET_PERIODS = {
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "quarter": 90 * 86400,
    "year": 365 * 86400,
}

# Labels driftgate sets itself on rules and alerts; a spec matcher may not use them.
RESERVED_LABELS = frozenset({"__name__", "le", "model", "signal", "window", "severity", "rollback",
                             "team", "alertname", "alertstate"})

# Free text (descriptions, contact lines) may contain anything printable except these.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\x85]")
MAX_TEXT = 500


def check_text(value: str, multiline: bool = False) -> str | None:
    """Return a problem description for free text, or None when it is acceptable."""
    if len(value) > MAX_TEXT:
        return f"at most {MAX_TEXT} characters, got {len(value)}"
    if _CONTROL.search(value):
        return "control characters are not allowed"
    if not multiline and "\n" in value:
        return "a single line is expected"
    return None


def describe_grammar(pattern: re.Pattern[str]) -> str:
    return {
        DNS_LABEL: "a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)",
        SIGNAL_NAME: "a signal name matching [a-z][a-z0-9_]* (at most 40 characters)",
        METRIC_NAME: "a Prometheus metric name matching [a-zA-Z_:][a-zA-Z0-9_:]*",
        LABEL_NAME: "a Prometheus label name matching [a-zA-Z_][a-zA-Z0-9_]*",
        SECRET_KEY: "a Secret key (letters, digits, '-', '_', '.')",
        URL: "an http(s) URL without credentials, query or fragment",
        SLACK_CHANNEL: "a Slack channel like '#team-alerts'",
    }.get(pattern, pattern.pattern)
