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
MAX_TEXT = 500


def check_text(value: str, multiline: bool = False) -> str | None:
    """Return a problem description for free text, or None when it is acceptable."""
    if len(value) > MAX_TEXT:
        return f"at most {MAX_TEXT} characters, got {len(value)}"
    if _CONTROL.search(value) or _C1.search(value):
        return "control characters are not allowed"
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


def check_template_text(value: str) -> str | None:
    """Free text that is also embedded in Go templates (Prometheus annotations, Alertmanager
    notification texts): ``{{`` would start a template action there and break or change the text."""
    if "{{" in value:
        return ("'{{' is not allowed: Prometheus and Alertmanager would read it as the start of a template "
                "action")
    return check_text(value)


def describe_grammar(pattern: re.Pattern[str]) -> str:
    return {
        DNS_LABEL: "a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)",
        MODEL_NAME: "a DNS-1123 label that starts with a letter (lowercase letters, digits and '-', at most 63 "
                    "characters; it also names Terraform resources)",
        SIGNAL_NAME: "a signal name matching [a-z][a-z0-9_]* (at most 40 characters)",
        METRIC_NAME: "a Prometheus metric name matching [a-zA-Z_:][a-zA-Z0-9_:]*",
        LABEL_NAME: "a Prometheus label name matching [a-zA-Z_][a-zA-Z0-9_]*",
        SECRET_KEY: "a Secret key (letters, digits, '-', '_', '.')",
        URL: "an http(s) URL without credentials, query or fragment",
        SLACK_CHANNEL: "a Slack channel like '#team-alerts'",
    }.get(pattern, pattern.pattern)
