"""Check rendered files in memory before any is written: a bad render never reaches the tree.

YAML must parse; every AnalysisTemplate passes the offline Argo lint; Kubernetes objects validate
strictly against the official CRD schemas when the reference directory is available (tests always
have it; see ``DRIFTGATE_REFERENCE_DIR``); Terraform must parse with python-hcl2.
"""

from __future__ import annotations

import hcl2
import yaml

from gen.errors import RenderError
from gen.validate import argo_lint, crd


def verify(files: dict[str, str | bytes], require_crds: bool = False) -> None:
    problems: list[str] = []
    try:
        crd.reference_dir()
        have_crds = True
    except FileNotFoundError:
        if require_crds:
            raise
        have_crds = False
    for rel, text in files.items():
        if isinstance(text, bytes):
            if rel.endswith(".png") and not text.startswith(b"\x89PNG\r\n\x1a\n"):
                problems.append(f"{rel}: not a PNG")
            continue
        if not text.endswith("\n"):
            problems.append(f"{rel}: does not end with a newline")
        if rel.endswith((".yaml", ".yml")):
            try:
                docs = [d for d in yaml.safe_load_all(text) if d is not None]
            except yaml.YAMLError as exc:
                problems.append(f"{rel}: not valid YAML: {exc}")
                continue
            for i, doc in enumerate(docs):
                if not isinstance(doc, dict) or "kind" not in doc:
                    continue
                if doc["kind"] == "AnalysisTemplate":
                    problems.extend(f"{rel}[{i}]: {m}" for m in argo_lint.lint_analysis_template(doc))
                if have_crds:
                    problems.extend(f"{rel}[{i}]: {m}" for m in crd.validate(doc))
        elif rel.endswith(".tf"):
            try:
                hcl2.loads(text)
            except Exception as exc:  # python-hcl2 raises lark errors of several types
                problems.append(f"{rel}: not valid HCL: {exc}")
    if problems:
        raise RenderError("the rendered output failed validation; nothing was written:\n  "
                          + "\n  ".join(problems), hint="this is a driftgate bug unless a template was edited")
