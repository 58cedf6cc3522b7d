"""Strict offline validation of rendered objects against the upstream CRD schemas.

Why strict: the API server *prunes* fields that a CRD's structural schema does not declare, silently.
A misspelt ``querry:`` in an AnalysisTemplate or ``matcher:`` in an AlertmanagerConfig is accepted by
``kubectl apply`` and then simply missing: the rollout gate or the alert route quietly does nothing.
So on top of the ordinary schema checks (types, required fields, enums, patterns) every key that the
schema does not declare is reported here, with a "did you mean" hint.

The schemas are CRD files the user already has (see :func:`locate`: ``--crds DIR``, ``$DRIFTGATE_CRDS``
or the repository's ``crds/`` folder; a Helm chart's ``crds/`` or ``kubectl get crd NAME -o yaml``
output, ``kind: List`` included), read as they are; nothing is hand-maintained here. The test suite
takes them from the Go module proxy (``scripts/fetch_crds.py``: argo-rollouts and prometheus-operator
CRDs and the argo-events JSON schema at pinned versions, byte for byte). Kubernetes-specific schema extensions are
honoured the way the API server does:

* ``x-kubernetes-int-or-string`` accepts an integer or a string (the ``anyOf`` next to it is not
  reported separately);
* ``x-kubernetes-preserve-unknown-fields`` switches the unknown-field check off for that object and
  below (declared properties are still checked);
* ``x-kubernetes-list-type: map``/``set`` reject duplicate entries, as the API server does;
* ``metadata`` is declared as a bare ``type: object`` in CRDs; it is checked here as ObjectMeta (name
  required, DNS-1123 names, string-to-string labels and annotations, no unknown keys).

Quirks of the upstream files that this module works around:

* the AlertmanagerConfig CRD has a bare ``- =`` enum item that PyYAML resolves to the YAML 1.1
  ``value`` tag and cannot construct; the loader maps it back to the string ``"="``;
* the PrometheusRule CRD has the Go regex ``^(?i)(abort|warn)?$``; Python's ``re`` rejects a global
  flag after ``^``, so a leading flag group is hoisted, and a pattern Python still cannot compile is
  skipped instead of crashing (the metaschema is never checked for the same reason);
* AlertmanagerConfig sub-routes (``spec.route.routes[]``) are declared as untyped JSON, but the
  operator decodes them as routes (non-strictly, so misspelt keys vanish there too): they are checked
  recursively against the ``spec.route`` schema.

Only the files directly in the reference directory or one level below are read, so
``prometheus-operator/crd-full/`` (a second AlertmanagerConfig CRD whose ``v1beta1`` needs the
conversion webhook) is not a source of schemas.

Schema documents with ``definitions``
-------------------------------------

Besides CRDs, a file of the directory may be a JSON schema (or OpenAPI v2 ``swagger.json``) document
with ``definitions`` whose entries carry ``x-kubernetes-group-version-kind``, as Kubernetes' own
OpenAPI v2 document and Argo Events' ``api/jsonschema/schema.json`` do (the Argo Events CRDs only say
``x-kubernetes-preserve-unknown-fields``; that file describes EventSource and Sensor, and the
k8s.io/api types: batch/v1 Job, v1 ServiceAccount, rbac/v1 Role, ...). Every (group, version, kind) of
such a definition is a served entry, validated against the definition with ``$ref: #/definitions/...``
resolved in that document, with the same strictness as a CRD. The definitions are read the way the
Kubernetes OpenAPI v2 generator writes them, which differs from a structural CRD schema:

* an object schema with ``properties`` and no ``additionalProperties`` is closed (the Go struct has no
  other fields; the API server drops unknown ones), so unknown keys are reported through ``$ref``;
* ``type: object`` with neither ``properties`` nor ``additionalProperties`` is free-form JSON
  (``RawExtension``, ``FieldsV1``, Argo Events' ``K8SResource``), not an object that allows nothing:
  it is treated as ``x-kubernetes-preserve-unknown-fields``;
* ``format: int-or-string`` (``IntOrString``: ``type: string`` in swagger.json, ``type: [integer,
  string]`` in the Argo Events schema) and ``int64-or-string`` are ``x-kubernetes-int-or-string``;
* ``resource.Quantity`` is declared ``type: string`` but decodes a plain number too (``cpu: 1``), so a
  number is accepted there;
* ``required`` is honoured, except for a few Argo Events fields that the generator marks required
  only because their Go field lacks ``omitempty`` and that nothing requires (``_NOT_REQUIRED``);
* ``const`` (JSON schema draft 6, used for the Argo Events ``apiVersion``/``kind``) is checked although
  the validator is otherwise draft 4;
* the top-level ``metadata`` is checked as ObjectMeta by the same code as for CRDs (``$ref`` to
  ``ObjectMeta`` is replaced there, so nothing is reported twice); nested ObjectMeta (a pod template's)
  is checked by its definition;
* scope: a definition does not say whether its kind is namespaced. It is inferred from an OpenAPI
  document's ``paths`` (namespaced if an operation for that kind has ``{namespace}`` in its path);
  otherwise (the Argo Events schema has no paths) the scope is unknown and not checked, unless a CRD
  for the same kind says it.

Precedence when a CRD and a definition describe the same (group, kind, version): the CRD wins if it
has a real schema, because it is what the cluster enforces and prunes with; a *placeholder* CRD (no
schema, or every field besides apiVersion, kind, metadata and status is
``x-kubernetes-preserve-unknown-fields`` without properties, like Argo Events' Sensor and EventSource
CRDs) loses to the definition, since it would check nothing while the controller still decodes the
spec strictly into its Go type. The placeholder still contributes what only it knows: whether the
version is served and the kind's scope. Between two entries of the same sort the first file in sorted
path order wins, as before.

A Sensor carries whole Kubernetes objects that the schema declares as free-form (``K8SResource``);
:func:`embedded_resources` lists them so that the caller validates each with :func:`validate`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, ValidationError, validators

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

ENV_REFERENCE_DIR = "DRIFTGATE_REFERENCE_DIR"

_INT_OR_STRING = "x-kubernetes-int-or-string"
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_LIST_TYPE = "x-kubernetes-list-type"
_LIST_MAP_KEYS = "x-kubernetes-list-map-keys"
_GVK = "x-kubernetes-group-version-kind"
_INT_OR_STRING_FORMATS = ("int-or-string", "int64-or-string")
_QUANTITY = ".pkg.api.resource.Quantity"  # io.k8s.apimachinery.pkg.api.resource.Quantity
_ENVELOPE = frozenset({"apiVersion", "kind", "metadata", "status"})
_SUGGEST_LIMIT = 12  # list the allowed fields when there are at most this many and no close match

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_OBJECT_META_FIELDS = (
    "name", "generateName", "namespace", "labels", "annotations", "finalizers", "ownerReferences",
    "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds", "managedFields", "selfLink",
)
_SIMPLE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
_LEADING_FLAGS = re.compile(r"^\^\(\?([ims]+)\)")

PathPart = str | int
Located = tuple[tuple[PathPart, ...], str]  # (path inside the object, message)
Schema = Mapping[str, Any]
Errors = Iterator[ValidationError]


# --------------------------------------------------------------------------------------------- loading


class _Loader(_BaseLoader):
    """Safe loader that reads the YAML 1.1 ``=`` value and records duplicate mapping keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            ident = (key_node.tag, key_node.value)
            if ident in seen:
                self.duplicates.append((key_node.start_mark.line + 1, key_node.value))
            seen.add(ident)
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


def _construct_value(loader: yaml.BaseLoader, node: yaml.Node) -> str:
    return str(node.value)  # the YAML 1.1 ``value`` tag only resolves the plain scalar ``=``


def _documents(loader: _Loader) -> Iterator[Any]:
    """Each document of the stream, ``None`` for an empty one."""
    while loader.check_node():
        node = loader.get_node()
        yield None if node is None else loader.construct_document(node)


_Loader.add_constructor("tag:yaml.org,2002:value", _construct_value)


ENV_CRDS = "DRIFTGATE_CRDS"
CONVENTIONAL_DIR = "crds"  # <root>/crds/: found by itself when present
_CRD_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Source:
    """Where the CRD schemas come from, or why there are none (``directory`` is None)."""

    directory: Path | None
    origin: str

    def skipped(self) -> str:
        return (f"strict schema validation of the generated Kubernetes objects was skipped: {self.origin} "
                f"(give --crds DIR, set ${ENV_CRDS}, or put the CRD YAML files in {CONVENTIONAL_DIR}/ "
                "of the repository: a Helm chart's crds/ folder or 'kubectl get crd NAME -o yaml' output)")


def locate(root: Path | None = None, explicit: Path | None = None) -> Source:
    """The CRD directory to validate against: ``--crds``, else ``$DRIFTGATE_CRDS``, else ``<root>/crds/``.

    An explicitly named directory that does not exist is an error (``FileNotFoundError`` naming it and
    where the name came from); with no name and no conventional folder, the source has no directory
    and says why, so the caller can print one line (and fail under ``--strict``).
    """
    named: list[tuple[str | None, str]] = [
        (str(explicit) if explicit is not None else None, "--crds"),
        (os.environ.get(ENV_CRDS) or None, f"${ENV_CRDS}"),
        (os.environ.get(ENV_REFERENCE_DIR) or None, f"${ENV_REFERENCE_DIR}"),
    ]
    for value, origin in named:
        if value is None:
            continue
        path = Path(value)
        if not path.is_dir():
            raise FileNotFoundError(f"CRD directory {path} (from {origin}) does not exist or is not a directory")
        if not _crd_files(path):
            raise FileNotFoundError(f"CRD directory {path} (from {origin}) holds no .yaml, .yml or .json file")
        return Source(path, f"from {origin}")
    if root is not None:
        conventional = root / CONVENTIONAL_DIR
        if conventional.is_dir() and not conventional.is_symlink() and _crd_files(conventional):
            return Source(conventional, f"found in {CONVENTIONAL_DIR}/")
    return Source(None, "no CRD schemas were given and the repository has no crds/ folder")


def reference_dir() -> Path:
    """The CRD directory named by the environment (``$DRIFTGATE_CRDS``, or the older
    ``$DRIFTGATE_REFERENCE_DIR``). Raises ``FileNotFoundError`` when neither names one."""
    found = locate(None, None)
    if found.directory is None:
        raise FileNotFoundError(f"no CRD directory: set ${ENV_CRDS} (or pass --crds DIR)")
    return found.directory


@functools.lru_cache(maxsize=32)
def load_crd_file(path: Path) -> tuple[Any, ...]:
    """Every YAML document in one CRD file (cached per path; treat the result as read-only).

    A ``.json`` file is read with the JSON parser (a 1.4 MB schema document takes milliseconds instead
    of seconds), falling back to YAML when it is not strict JSON."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            return (json.loads(text),)
        except ValueError:
            pass
    loader = _Loader(text)
    try:
        return tuple(_documents(loader))
    finally:
        loader.dispose()


@dataclass(frozen=True)
class CrdVersion:
    """One version of one resource kind, as declared by a CRD file or a schema document's definition.

    ``namespaced`` is ``None`` when the source does not say (a definition without OpenAPI ``paths``);
    ``definition`` names the definition (``None`` for a CRD); ``placeholder`` marks a CRD whose schema
    checks nothing (see the module docstring)."""

    group: str
    kind: str
    version: str
    served: bool
    namespaced: bool | None
    source: Path
    definition: str | None = None
    placeholder: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def _crd_files(directory: Path) -> list[Path]:
    found = {p for suffix in _CRD_SUFFIXES for pattern in (f"*{suffix}", f"*/*{suffix}")
             for p in directory.glob(pattern)}
    return sorted(p for p in found if p.is_file())


def _crd_documents(path: Path) -> Iterator[dict[str, Any]]:
    """The CustomResourceDefinitions in one file, ``kind: List`` output of ``kubectl get crd`` included."""
    for doc in load_crd_file(path):
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            yield from (i for i in doc["items"] if isinstance(i, dict) and i.get("kind") == "CustomResourceDefinition")
        elif doc.get("kind") == "CustomResourceDefinition":
            yield doc


def _versions_in(path: Path) -> Iterator[CrdVersion]:
    for doc in _crd_documents(path):
        spec = doc.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind", "")
        for version in spec.get("versions") or []:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            yield CrdVersion(spec.get("group", ""), kind, version.get("name", ""),
                             bool(version.get("served")), spec.get("scope") != "Cluster", path,
                             placeholder=_is_placeholder(schema))


def _is_placeholder(schema: Any) -> bool:
    """True for a CRD schema that checks nothing: none, no properties, or every field but the
    envelope (apiVersion, kind, metadata, status) is preserve-unknown-fields without properties."""
    if not isinstance(schema, dict):
        return True
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return True
    content = [sub for name, sub in props.items() if name not in _ENVELOPE]
    return bool(content) and all(isinstance(sub, dict) and sub.get(_PRESERVE) and not sub.get("properties")
                                 for sub in content)


def _definitions_of(doc: Any) -> dict[str, Any] | None:
    """The ``definitions`` of a JSON schema / OpenAPI v2 document, ``None`` for anything else."""
    if not isinstance(doc, dict) or doc.get("kind") in ("CustomResourceDefinition", "List"):
        return None
    defs = doc.get("definitions")
    return defs if isinstance(defs, dict) else None


def _gvks(marker: Any) -> Iterator[tuple[str, str, str]]:
    """(group, kind, version) of an ``x-kubernetes-group-version-kind`` value (a list or one mapping)."""
    for gvk in marker if isinstance(marker, list) else [marker]:
        if isinstance(gvk, dict) and isinstance(gvk.get("kind"), str) and isinstance(gvk.get("version"), str):
            yield str(gvk.get("group") or ""), gvk["kind"], gvk["version"]


def _path_scopes(doc: dict[str, Any]) -> dict[tuple[str, str, str], bool]:
    """Whether each kind with operations in an OpenAPI document's ``paths`` is namespaced."""
    scopes: dict[tuple[str, str, str], bool] = {}
    paths = doc.get("paths")
    for url, item in (paths.items() if isinstance(paths, dict) else ()):
        for operation in (item.values() if isinstance(item, dict) else ()):
            if isinstance(operation, dict):
                for key in _gvks(operation.get(_GVK)):
                    scopes[key] = scopes.get(key, False) or "{namespace}" in str(url)
    return scopes


def _definition_versions_in(path: Path) -> Iterator[CrdVersion]:
    for doc in load_crd_file(path):
        defs = _definitions_of(doc)
        if defs is None:
            continue
        scopes = _path_scopes(doc)
        for name, schema in defs.items():
            if isinstance(schema, dict):
                for key in _gvks(schema.get(_GVK)):
                    yield CrdVersion(*key, served=True, namespaced=scopes.get(key), source=path,
                                     definition=str(name))


def _preferred(candidates: list[CrdVersion]) -> CrdVersion:
    """The entry to validate one (group, kind, version) with: see the module docstring."""
    crds = [e for e in candidates if e.definition is None]
    structural = [e for e in crds if not e.placeholder]
    if structural:
        return structural[0]
    definitions = [e for e in candidates if e.definition is not None]
    if not definitions:
        return crds[0]
    if not crds:
        return definitions[0]
    namespaced = crds[0].namespaced if crds[0].namespaced is not None else definitions[0].namespaced
    return dataclasses.replace(definitions[0], served=crds[0].served, namespaced=namespaced)


@functools.lru_cache(maxsize=8)
def _catalogue(directory: Path) -> tuple[CrdVersion, ...]:
    found: dict[tuple[str, str, str], list[CrdVersion]] = {}
    for path in _crd_files(directory):
        for entry in (*_versions_in(path), *_definition_versions_in(path)):
            found.setdefault((entry.group, entry.kind, entry.version), []).append(entry)
    return tuple(_preferred(candidates) for candidates in found.values())


def known_versions(directory: Path | None = None) -> tuple[CrdVersion, ...]:
    """Every (group, kind, version) declared by the CRDs in ``directory`` (default :func:`reference_dir`)."""
    return _catalogue(directory if directory is not None else reference_dir())


def _raw_schema(entry: CrdVersion) -> dict[str, Any]:
    if entry.definition is not None:
        for defs in _prepared_definitions(entry.source):
            if entry.definition in defs:
                return {**defs[entry.definition], "definitions": defs}
        raise LookupError(f"definition {entry.definition} not found in {entry.source}")
    for doc in _crd_documents(entry.source):
        spec = doc.get("spec") or {}
        if spec.get("group") != entry.group or (spec.get("names") or {}).get("kind") != entry.kind:
            continue
        for version in spec.get("versions") or []:
            if version.get("name") == entry.version:
                schema: dict[str, Any] = (version.get("schema") or {}).get("openAPIV3Schema") or {}
                return schema
    raise LookupError(f"{entry.api_version} {entry.kind} not found in {entry.source}")


# --------------------------------------------------------------------------------- schema preparation


_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_ONE = ("additionalProperties", "items", "additionalItems", "not")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "items")
_OBJECT_SHAPES = ("properties", "additionalProperties", "patternProperties", "$ref", "allOf", "anyOf", "oneOf")


def _openapi_v2(schema: Any, name: str = "") -> Any:
    """A copy of one Kubernetes OpenAPI v2 / JSON schema definition in the CRD dialect this module
    validates (see the module docstring); ``name`` is the definition's name at the top level."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {sub: _openapi_v2(value) for sub, value in out[key].items()}
    for key in _SCHEMA_ONE:
        if isinstance(out.get(key), dict):
            out[key] = _openapi_v2(out[key])
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_openapi_v2(value) for value in out[key]]
    if out.get("format") in _INT_OR_STRING_FORMATS:
        out.pop("type", None)
        out[_INT_OR_STRING] = True
    elif name.endswith(_QUANTITY) and out.get("type") == "string":
        out["type"] = ["string", "number"]
    if "properties" in out and "type" not in out and "$ref" not in out:
        out["type"] = "object"
    if out.get("type") == "object" and not any(key in out for key in _OBJECT_SHAPES):
        out[_PRESERVE] = True  # free-form JSON (RawExtension), not an object without fields
    return out


# Fields an upstream definition lists as ``required`` (its generator marks every Go field without
# ``omitempty``) that the consumer does not require. Found by validating the Argo Events v1.9.8
# examples (examples/event-sources, examples/sensors) and checked against its validation code: the
# webhook ``url`` is only read by event sources that register a webhook elsewhere (GitHub, GitLab, ...),
# ``examples/event-sources/webhook.yaml`` omits it; Azure Service Bus takes a queue *or* a topic and a
# subscription; an event-context filter matches only the attributes it names; HTTP and custom triggers
# work without a payload and ``secure`` defaults to false. Everything else the schemas require is
# reported.
_EVENTS = "io.argoproj.events.v1alpha1."
_EVENT_CONTEXT = frozenset({"id", "source", "specversion", "type", "datacontenttype", "subject", "time"})
_NOT_REQUIRED: dict[str, frozenset[str]] = {
    _EVENTS + "WebhookContext": frozenset({"url"}),
    _EVENTS + "WebhookEventSource": frozenset({"url"}),
    _EVENTS + "AzureServiceBusEventSource": frozenset({"queueName", "topicName", "subscriptionName"}),
    _EVENTS + "AzureServiceBusTrigger": frozenset({"queueName", "topicName", "subscriptionName"}),
    _EVENTS + "EventContext": _EVENT_CONTEXT,
    _EVENTS + "HTTPTrigger": frozenset({"payload"}),
    _EVENTS + "CustomTrigger": frozenset({"secure", "payload"}),
}


def _prepared_definition(name: str, schema: Any) -> Any:
    out = _openapi_v2(schema, name)
    optional = _NOT_REQUIRED.get(name)
    if optional and isinstance(out, dict) and isinstance(out.get("required"), list):
        out["required"] = [field for field in out["required"] if field not in optional]
    return out


@functools.lru_cache(maxsize=8)
def _prepared_definitions(path: Path) -> tuple[dict[str, Any], ...]:
    """The ``definitions`` of each schema document in ``path``, prepared once (read-only)."""
    return tuple({str(name): _prepared_definition(str(name), schema) for name, schema in defs.items()}
                 for defs in map(_definitions_of, load_crd_file(path)) if defs is not None)


def _with_property(schema: dict[str, Any], path: Sequence[str],
                   build: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """A copy of ``schema`` with the sub-schema at property ``path`` replaced by ``build(sub)``."""
    if not path:
        return build(schema)
    props = schema.get("properties")
    if not isinstance(props, dict) or not isinstance(props.get(path[0]), dict):
        return schema
    new_props = dict(props)
    new_props[path[0]] = _with_property(props[path[0]], path[1:], build)
    return {**schema, "properties": new_props}


def _untyped_metadata(_: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", _PRESERVE: True}  # checked separately as ObjectMeta


def _recursive_routes(route: dict[str, Any]) -> dict[str, Any]:
    """The route schema with ``routes[]`` items pointing back at the route schema itself."""
    props = route.get("properties")
    if not isinstance(props, dict) or not isinstance(props.get("routes"), dict):
        return route
    new_route = dict(route)
    new_props = dict(props)
    new_props["routes"] = {**props["routes"], "items": new_route}
    new_route["properties"] = new_props
    return new_route


# Untyped subtrees that the consuming controller decodes with a known schema.
_SCHEMA_PATCHES: dict[tuple[str, str], list[tuple[tuple[str, ...], Callable[..., dict[str, Any]]]]] = {
    ("monitoring.coreos.com", "AlertmanagerConfig"): [(("spec", "route"), _recursive_routes)],
}


@functools.lru_cache(maxsize=128)
def _validator_for(entry: CrdVersion) -> Any:
    schema = _with_property(_raw_schema(entry), ("metadata",), _untyped_metadata)
    for path, build in _SCHEMA_PATCHES.get((entry.group, entry.kind), []):
        schema = _with_property(schema, path, build)
    return _StrictValidator(schema)


# ------------------------------------------------------------------------------------------ keywords


def type_name(value: Any) -> str:
    """How a YAML/JSON value's type is called in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_SCHEMA_TYPE_NAMES = {"array": "list"}


def suggest(key: str, allowed: Iterable[str], list_allowed: bool = True) -> str:
    """`` (did you mean 'x'?)``, `` (allowed: a, b)`` or ``""`` for an unknown ``key``."""
    names = sorted(allowed)
    lowered = {name.lower(): name for name in names}
    if key.lower() in lowered:
        return f" (did you mean {lowered[key.lower()]!r}?)"
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if list_allowed and names and len(names) <= _SUGGEST_LIMIT:
        return f" (allowed: {', '.join(names)})"
    return ""


def _type(validator: Any, types: Any, instance: Any, schema: Schema) -> Errors:
    wanted = types if isinstance(types, list) else [types]
    if instance is None and schema.get("nullable"):
        return
    if not any(validator.is_type(instance, t) for t in wanted):
        names = " or ".join(str(_SCHEMA_TYPE_NAMES.get(t, t)) for t in wanted)
        yield ValidationError(f"expected {names}, got {type_name(instance)}")
        return
    if "object" in wanted and isinstance(instance, dict):
        yield from _unknown_fields(instance, schema)


def _unknown_fields(instance: dict[str, Any], schema: Schema) -> Errors:
    if schema.get(_PRESERVE) or schema.get("additionalProperties", False) is not False:
        return
    props = schema.get("properties") or {}
    for key in instance:
        if key not in props:
            yield ValidationError(f"unknown field{suggest(str(key), props)}", path=[key])


def _additional_properties(validator: Any, extra: Any, instance: Any,
                           schema: Schema) -> Errors:
    if not isinstance(extra, dict) or not isinstance(instance, dict):
        return  # ``false`` is reported key by key by the unknown-field check
    props = schema.get("properties") or {}
    for key, value in instance.items():
        if key not in props:
            yield from validator.descend(value, extra, path=key)


def _int_or_string(validator: Any, flag: Any, instance: Any, schema: Schema) -> Errors:
    if flag and not (isinstance(instance, str) or validator.is_type(instance, "integer")):
        yield ValidationError(f"expected integer or string, got {type_name(instance)}")


def _any_of(validator: Any, branches: Any, instance: Any, schema: Schema) -> Errors:
    if schema.get(_INT_OR_STRING):
        return  # reported by the int-or-string keyword with a readable message
    failures: list[ValidationError] = []
    for index, branch in enumerate(branches):
        errors = list(validator.descend(instance, branch, schema_path=index))
        if not errors:
            return
        failures.extend(errors)
    detail = "; ".join(_relative_message(e) for e in failures[:3])
    yield ValidationError(f"matches none of the allowed forms ({detail})", context=failures)


def _one_of(validator: Any, branches: Any, instance: Any, schema: Schema) -> Errors:
    matched = [i for i, branch in enumerate(branches) if validator.evolve(schema=branch).is_valid(instance)]
    if len(matched) != 1:
        yield ValidationError(f"must match exactly one of the allowed forms, matches {len(matched)}")


def _required(validator: Any, names: Any, instance: Any, schema: Schema) -> Errors:
    if isinstance(instance, dict):
        for name in names:
            if name not in instance:
                yield ValidationError(f"missing required field {name!r}")


def _enum(validator: Any, allowed: Any, instance: Any, schema: Schema) -> Errors:
    if instance not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        yield ValidationError(f"must be one of {choices}; got {instance!r}")


def _const(validator: Any, expected: Any, instance: Any, schema: Schema) -> Errors:
    """Draft 6 ``const``, which draft 4 ignores; ``1`` and ``True`` differ, as in JSON."""
    if type_name(instance) != type_name(expected) or instance != expected:
        yield ValidationError(f"must be {expected!r}; got {instance!r}")


@functools.lru_cache(maxsize=256)
def compile_go_regex(pattern: str) -> re.Pattern[str] | None:
    """``pattern`` compiled by Python's ``re`` as an approximation of Go RE2; ``None`` if it can't be.

    A leading ``^(?i)`` (legal in Go, an error in Python) is rewritten to ``(?i)^``.
    """
    for candidate in (pattern, _LEADING_FLAGS.sub(r"(?\1)^", pattern)):
        try:
            return re.compile(candidate)
        except re.error:
            continue
    return None


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Schema) -> Errors:
    if not isinstance(instance, str):
        return
    compiled = compile_go_regex(pattern)
    if compiled is not None and not compiled.search(instance):
        yield ValidationError(f"{instance!r} does not match the pattern {pattern}")


def _list_type(validator: Any, list_type: Any, instance: Any, schema: Schema) -> Errors:
    if not isinstance(instance, list):
        return
    if list_type == "set":
        yield from _duplicates(instance, lambda item: repr(item), "duplicate item {key} in a set")
    elif list_type == "map":
        keys = schema.get(_LIST_MAP_KEYS) or []
        yield from _duplicates(instance, lambda item: _map_key(item, keys), "duplicate entry for {key}")


def _map_key(item: Any, keys: Sequence[str]) -> str | None:
    if not isinstance(item, dict):
        return None
    return ", ".join(f"{k}={item.get(k)!r}" for k in keys)


def _duplicates(items: list[Any], key_of: Callable[[Any], str | None], template: str) -> Errors:
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        key = key_of(item)
        if key is None:
            continue
        if key in first:
            yield ValidationError(template.format(key=key) + f" (first at [{first[key]}])", path=[index])
        else:
            first[key] = index


_StrictValidator = validators.extend(
    Draft4Validator,
    {
        "type": _type,
        "additionalProperties": _additional_properties,
        _INT_OR_STRING: _int_or_string,
        "anyOf": _any_of,
        "oneOf": _one_of,
        "required": _required,
        "enum": _enum,
        "const": _const,
        "pattern": _pattern,
        _LIST_TYPE: _list_type,
    },
)


# ------------------------------------------------------------------------------------------ messages


def format_path(path: Iterable[PathPart]) -> str:
    """``spec.metrics[0].provider``; keys that are not plain words are quoted: ``labels["a/b"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += '["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


def located(path: Iterable[PathPart], message: str) -> str:
    where = format_path(path)
    return f"{where}: {message}" if where else message


def _relative_message(error: ValidationError) -> str:
    return located(error.relative_path, error.message)


def _schema_problems(obj: dict[str, Any], entry: CrdVersion) -> list[Located]:
    return [(tuple(error.absolute_path), error.message) for error in _validator_for(entry).iter_errors(obj)]


def document_order(obj: Any, path: Sequence[PathPart]) -> tuple[int, ...]:
    """Sort key placing ``path`` where it appears in ``obj`` (mapping keys in insertion order)."""
    key: list[int] = []
    node = obj
    for part in path:
        if isinstance(node, dict) and part in node:
            key.append(list(node).index(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            key.append(part)
            node = node[part]
        else:
            key.append(-1)  # a missing field: report it before the fields that are there
            node = None
    return tuple(key)


def render_problems(obj: Any, problems: Iterable[Located]) -> list[str]:
    """``path: message`` strings in document order, without repeats."""
    ordered = sorted(dict.fromkeys(problems), key=lambda p: document_order(obj, p[0]))
    return [located(path, message) for path, message in ordered]


# ------------------------------------------------------------------------------------------ metadata


def _metadata_problems(meta: Any) -> list[Located]:
    if meta is None:
        return [((), "missing required field 'metadata'")]
    if not isinstance(meta, dict):
        return [(("metadata",), f"expected object, got {type_name(meta)}")]
    out: list[Located] = [(("metadata", key), f"unknown field{suggest(str(key), _OBJECT_META_FIELDS)}")
                          for key in meta if key not in _OBJECT_META_FIELDS]
    out += _name_problems(meta)
    out += _string_map_problems(meta.get("labels"), "labels", _label_value_problem)
    out += _string_map_problems(meta.get("annotations"), "annotations", lambda _: None)
    return out


def _name_problems(meta: dict[str, Any]) -> list[Located]:
    out: list[Located] = []
    name = meta.get("name")
    generate = meta.get("generateName")
    if generate is not None:
        # the API server appends 5 random characters; a trailing '-' is fine in the prefix
        masked = generate[:-1] + "a" if isinstance(generate, str) and generate.endswith("-") else generate
        if not isinstance(generate, str):
            out.append((("metadata", "generateName"), f"expected string, got {type_name(generate)}"))
        elif len(generate) > 248 or not _DNS1123_SUBDOMAIN.fullmatch(str(masked)):
            out.append((("metadata", "generateName"), f"{generate!r} is not a DNS-1123 subdomain prefix "
                        "(lowercase letters, digits, '-' and '.', alphanumeric at the start, at most 248 "
                        "characters)"))
    if name is None:
        if generate is None:
            out.append((("metadata",), "missing required field 'name'"))
    elif not isinstance(name, str):
        out.append((("metadata", "name"), f"expected string, got {type_name(name)}"))
    elif len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
        out.append((("metadata", "name"), f"{name!r} is not a DNS-1123 subdomain (lowercase letters, "
                    "digits, '-' and '.', alphanumeric at both ends, at most 253 characters)"))
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or len(namespace) > 63
                                  or not _DNS1123_LABEL.fullmatch(namespace)):
        out.append((("metadata", "namespace"), f"{namespace!r} is not a DNS-1123 label (lowercase "
                    "letters, digits and '-', alphanumeric at both ends, at most 63 characters)"))
    return out


def _string_map_problems(value: Any, field: str, value_problem: Callable[[str], str | None]) -> list[Located]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [(("metadata", field), f"expected object, got {type_name(value)}")]
    out: list[Located] = []
    for key, item in value.items():
        path: tuple[PathPart, ...] = ("metadata", field, str(key))
        key_problem = _qualified_name_problem(key)
        if key_problem:
            out.append((path, key_problem))
        if not isinstance(item, str):
            out.append((path, f"expected string, got {type_name(item)} (quote it)"))
            continue
        problem = value_problem(item)
        if problem:
            out.append((path, problem))
    return out


def _qualified_name_problem(key: Any) -> str | None:
    if not isinstance(key, str):
        return f"key must be a string, got {type_name(key)}"
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return f"key prefix {prefix!r} is not a DNS-1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        return (f"key name {name!r} must be 1-63 characters of letters, digits, '-', '_' and '.', "
                "alphanumeric at both ends")
    return None


def _label_value_problem(value: str) -> str | None:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        return (f"label value {value!r} must be at most 63 characters of letters, digits, '-', '_' "
                "and '.', alphanumeric at both ends")
    return None


# -------------------------------------------------------------------------------------------- public


def _select(obj: dict[str, Any], directory: Path | None) -> tuple[CrdVersion | None, list[str]]:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version:
        return None, ["missing required field 'apiVersion'"]
    if not isinstance(kind, str) or not kind:
        return None, ["missing required field 'kind'"]
    group, _, version = api_version.rpartition("/")
    entries = known_versions(directory)
    kinds = {e.kind for e in entries}
    same_kind = [e for e in entries if e.kind == kind]
    if not same_kind:
        hint = suggest(kind, kinds, list_allowed=False)
        return None, [f"kind: unknown kind {kind!r}{hint}; known: {', '.join(sorted(kinds))}"]
    served = [e for e in same_kind if e.served]
    for entry in served:
        if (entry.group, entry.version) == (group, version):
            return entry, []
    choices = ", ".join(sorted(e.api_version for e in served)) or "none"
    return None, [f"apiVersion: {api_version!r} is not served for kind {kind} (served: {choices})"]


def validate(obj: Any, directory: Path | None = None) -> list[str]:
    """Every problem with one Kubernetes object, strictly, as ``path: message`` strings.

    Empty when the object is valid; in document order otherwise. The CRD is chosen by ``apiVersion``
    and ``kind`` among :func:`known_versions`. Raises ``FileNotFoundError`` when the reference
    directory is missing.
    """
    if not isinstance(obj, dict):
        return [f"expected object (a Kubernetes resource), got {type_name(obj)}"]
    entry, selection = _select(obj, directory)
    if entry is None:
        return selection
    problems = _schema_problems(obj, entry) + _metadata_problems(obj.get("metadata"))
    problems += _scope_problems(obj.get("metadata"), entry)
    return render_problems(obj, problems)


def _scope_problems(meta: Any, entry: CrdVersion) -> list[Located]:
    if entry.namespaced is not False or not isinstance(meta, dict) or "namespace" not in meta:
        return []  # namespaced, or the scope is unknown (a definition without OpenAPI paths)
    return [(("metadata", "namespace"), f"{entry.kind} is cluster-scoped: remove the namespace")]


_EMBEDDING_TRIGGERS = ("k8s", "argoWorkflow")  # Argo Events triggers whose source.resource is an object


def embedded_resources(obj: Any) -> list[tuple[tuple[PathPart, ...], dict[str, Any]]]:
    """The Kubernetes objects an Argo Events Sensor carries as free-form data, with their paths.

    ``spec.triggers[i].template.k8s.source.resource`` (the object a standard K8s trigger creates) and
    ``spec.triggers[i].template.argoWorkflow.source.resource`` (a Workflow): the Sensor schema declares
    them as arbitrary JSON, so :func:`validate` does not look inside; validate each one with it::

        for path, resource in embedded_resources(obj):
            problems += [located(path, message) for message in validate(resource, directory)]

    The objects are validated as written: trigger ``parameters`` may change them when the Sensor fires.
    Empty for anything but a Sensor (``argoproj.io``); a resource that is not a mapping is left to the
    schema (it reports the wrong type).
    """
    if not isinstance(obj, dict) or obj.get("kind") != "Sensor":
        return []
    if not str(obj.get("apiVersion", "")).startswith("argoproj.io/"):
        return []
    spec = obj.get("spec")
    triggers = spec.get("triggers") if isinstance(spec, dict) else None
    found: list[tuple[tuple[PathPart, ...], dict[str, Any]]] = []
    for index, trigger in enumerate(triggers if isinstance(triggers, list) else []):
        template = trigger.get("template") if isinstance(trigger, dict) else None
        for kind in _EMBEDDING_TRIGGERS:
            body = template.get(kind) if isinstance(template, dict) else None
            source = body.get("source") if isinstance(body, dict) else None
            resource = source.get("resource") if isinstance(source, dict) else None
            if isinstance(resource, dict):
                found.append((("spec", "triggers", index, "template", kind, "source", "resource"), resource))
    return found


def parse_documents(text: str, source: str) -> tuple[list[tuple[int, Any]], list[str]]:
    """``(index, document)`` for each non-empty YAML document in ``text``, and parse problems.

    Problems are prefixed with ``source``: invalid YAML, and duplicate keys (PyYAML keeps the last
    value silently; kubectl rejects the file). The last few texts' results are remembered (a render
    reads its PrometheusRule for the kubernetes_manifest flavour, then validates it): treat the
    documents as read-only. A text the renderer built from its typed model (:func:`built_documents`)
    is not parsed: its documents are the objects it was rendered from.
    """
    built = _BUILT.get((text, source))
    if built is not None:
        return list(built), []
    docs, problems = _parse_documents(text, source)
    return list(docs), list(problems)


ENV_CHECK_BUILT = "DRIFTGATE_CHECK_BUILT"
_BUILT: dict[tuple[str, str], tuple[tuple[int, Any], ...]] = {}
_BUILT_KEEP = 16


_CHECKED: set[str] = set()  # template families whose first text this process parsed


class BuiltMismatch(ValueError):
    """A text rendered from a typed model does not read back as that model (a template bug)."""


def built_documents(text: str, source: str, docs: Sequence[tuple[int, Any]], family: str) -> None:
    """Remember that ``text``, rendered from a typed model, holds exactly ``docs`` (``(index, document)``):
    :func:`parse_documents` then returns them instead of parsing the text again (validation checks the
    objects the text was rendered from; a large PrometheusRule costs ~10 ms to parse back).

    That the text reads back as those objects is the template's promise, and it is checked with the real
    loader (a difference raises :class:`BuiltMismatch` naming the first differing key path): for the first
    text of each ``family`` (one template) in each process, which shows a broken or edited template in
    any render, and for every text when ``$DRIFTGATE_CHECK_BUILT`` is set (the test suite sets it for
    every render it runs). Values reach the text through the ``yq`` filter, whose escaping the tests fuzz."""
    docs = tuple(docs)
    if family not in _CHECKED or os.environ.get(ENV_CHECK_BUILT):
        parsed, problems = _parse_documents(text, source)
        if problems:
            raise BuiltMismatch(f"{source}: {'; '.join(problems)}")
        if [i for i, _ in parsed] != [i for i, _ in docs]:
            raise BuiltMismatch(f"{source}: the rendered text holds documents {[i for i, _ in parsed]}, the objects "
                                f"it was rendered from are documents {[i for i, _ in docs]}")
        for (index, got), (_, want) in zip(parsed, docs, strict=True):
            where = _first_difference(got, want, ())
            if where is not None:
                raise BuiltMismatch(f"{source}: document {index}: the rendered text does not read back as the "
                                    f"object it was rendered from, at {format_path(where) or '(top)'}")
        _CHECKED.add(family)
    _BUILT[(text, source)] = docs
    while len(_BUILT) > _BUILT_KEEP:
        del _BUILT[next(iter(_BUILT))]


def _first_difference(a: Any, b: Any, path: tuple[PathPart, ...]) -> tuple[PathPart, ...] | None:
    """The first key path where ``a`` and ``b`` differ (types, keys, key order, values), or None."""
    if type(a) is not type(b) and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))):
        return path
    if isinstance(a, dict):
        if list(a) != list(b):
            return path
        for k in a:
            found = _first_difference(a[k], b[k], (*path, k))
            if found is not None:
                return found
        return None
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_difference(x, y, (*path, i))
            if found is not None:
                return found
        return None
    return None if a == b else path


@functools.lru_cache(maxsize=16)
def _parse_documents(text: str, source: str) -> tuple[tuple[tuple[int, Any], ...], tuple[str, ...]]:
    loader = _Loader(text)
    docs: list[tuple[int, Any]] = []
    problems: list[str] = []
    try:
        for index, doc in enumerate(_documents(loader)):
            if doc is not None:
                docs.append((index, doc))
    except yaml.YAMLError as exc:
        problems.append(f"{source}: invalid YAML: {exc}".replace("\n", " "))
    finally:
        loader.dispose()
    problems += [f"{source}:{line}: duplicate key {key!r}" for line, key in loader.duplicates]
    return tuple(docs), tuple(problems)


def validate_documents(text: str, source: str, directory: Path | None = None) -> list[str]:
    """:func:`validate` for every document of a multi-document YAML text.

    Messages read ``<source>: document <index>: <path>: <message>``; ``index`` counts from 0 in file
    order, empty documents included.
    """
    docs, problems = parse_documents(text, source)
    for index, doc in docs:
        problems += [f"{source}: document {index}: {message}" for message in validate(doc, directory)]
    return problems
