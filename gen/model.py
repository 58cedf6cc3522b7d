"""The resolved model: what a spec *means*, with every default applied and every name checked.

``spec file (YAML) --validate--> ModelSpec --fit--> Baseline --render--> files``

Everything here is frozen and has no optionals left that a renderer would have to guess about.
Names that reach HCL, PromQL or YAML are validated once, at construction (see ``driftgate.spec.names``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class SignalKind(StrEnum):
    DISTRIBUTION_DRIFT = "distribution_drift"
    LATENCY_QUANTILE = "latency_quantile"
    ERROR_RATIO = "error_ratio"
    KPI_RATIO = "kpi_ratio"


class Statistic(StrEnum):
    PSI = "psi"
    JS = "js"  # Jensen-Shannon divergence, log base 2 (bounded by 1)
    TVD = "tvd"
    QUANTILE = "quantile"
    RATIO = "ratio"


class Direction(StrEnum):
    ABOVE = "above"
    BELOW = "below"


class Tier(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


class NoData(StrEnum):
    """What the analysis does when a window has no data or fewer events than ``min_events``."""

    INCONCLUSIVE = "inconclusive"  # pause the rollout for the rollback authority
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class SecretRef:
    """A Kubernetes ``secretKeyRef``. Secrets are referenced, never inlined."""

    name: str
    key: str


@dataclass(frozen=True)
class Duration:
    """A Prometheus duration such as ``10m``; ``text`` is exactly what is rendered."""

    text: str
    seconds: int

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Budget:
    """A false-rollback budget: ``events`` per ``period`` (``1/quarter``)."""

    text: str
    events: float
    period_seconds: int

    @property
    def rate_per_second(self) -> float:
        return self.events / self.period_seconds


@dataclass(frozen=True)
class Windows:
    fast: Duration
    slow: Duration

    def items(self) -> tuple[tuple[str, Duration], ...]:
        return (("fast", self.fast), ("slow", self.slow))


@dataclass(frozen=True)
class PinnedThreshold:
    auto: float | None
    manual: float | None


@dataclass(frozen=True)
class Signal:
    name: str  # [a-z][a-z0-9_]*
    kind: SignalKind
    statistic: Statistic
    metric: str  # histogram base name for histogram kinds; numerator counter for ratios
    denominator: str  # denominator counter for ratios; "" for histogram kinds
    quantile: float  # latency_quantile only; 0.0 otherwise
    matchers: tuple[tuple[str, str], ...]  # extra equality matchers (label, value), sorted
    windows: Windows
    direction: Direction
    tier: Tier
    min_events: int
    no_data: NoData
    pinned: PinnedThreshold
    description: str
    compare_with: str = "baseline"  # drift only: "baseline" (fitted constants), "last_week" (offset 1w)
    # or "stable" (a young version against the established versions over the same window)
    # Ratios: matchers of the numerator / denominator alone, (label, "=" or "=~", value), sorted.
    numerator_matchers: tuple[tuple[str, str, str], ...] = ()
    denominator_matchers: tuple[tuple[str, str, str], ...] = ()

    @property
    def is_histogram(self) -> bool:
        return self.kind in (SignalKind.DISTRIBUTION_DRIFT, SignalKind.LATENCY_QUANTILE)

    @property
    def slug(self) -> str:
        """The signal name in Kubernetes/Argo form (``score_drift`` -> ``score-drift``)."""
        return self.name.replace("_", "-")


@dataclass(frozen=True)
class Team:
    name: str
    slack_channel: str
    slack_webhook: SecretRef
    pagerduty_routing_key: SecretRef | None = None  # paged (critical) with the authority on an automatic breach


@dataclass(frozen=True)
class RollbackAuthority:
    name: str
    contact: str
    pagerduty_routing_key: SecretRef


@dataclass(frozen=True)
class Freeze:
    """After an automatic rollback the model may not re-roll for ``window``."""

    window: Duration
    webhook_url: str  # the deploy pipeline's freeze endpoint (not a secret)
    webhook_token: SecretRef  # bearer token for it (a secret, referenced)
    lifted_until: int | None  # unix seconds; the rollback authority's reviewed lift


@dataclass(frozen=True)
class ExcludedSpan:
    """A stretch of the history that is not normal (an incident): ``history.exclude``. The fit leaves every
    window that overlaps ``[start, end)`` out of its statistics and its backtest."""

    start: int  # unix seconds, inclusive
    end: int  # unix seconds, exclusive; > start
    reason: str

    @property
    def seconds(self) -> int:
        return self.end - self.start


# Images of the opt-in automatic undo (release.auto_undo): the Argo Rollouts kubectl plugin at the release
# whose CRDs driftgate validates against, and upstream kubectl for the guards (``kubectl wait``).
UNDO_IMAGE = "quay.io/argoproj/kubectl-argo-rollouts:v1.10.1"
KUBECTL_IMAGE = "registry.k8s.io/kubectl:v1.34.2"


@dataclass(frozen=True)
class AutoUndo:
    """Opt-in automatic undo after completion (``release.auto_undo``), through Argo Events.

    Alertmanager posts a release's ``DriftgateAutoRollback`` to an Argo Events webhook EventSource in
    ``namespace`` (on ``event_bus``); a Sensor creates a Job in the model's namespace that runs
    ``kubectl argo rollouts undo`` only when two guards hold: the alert's version is the Rollout's current
    one and the Rollout is Healthy (fully promoted). While a rollout runs, Argo's abort acts instead."""

    token: SecretRef  # bearer token Alertmanager sends and the EventSource requires (authSecret)
    namespace: str = "argo-events"
    event_bus: str = "default"
    image: str = UNDO_IMAGE
    kubectl_image: str = KUBECTL_IMAGE


@dataclass(frozen=True)
class Release:
    """The phases of a release (docs/spec.md, "What happens during a rollout").

    ``horizon``: for this long after a version first appears it counts as a *release*: an automatic
    breach rolls it back (Argo aborts while the rollout runs; after completion the rollback authority
    and the team are paged with the undo command) and freezes rollouts. An older version that breaches
    is drift without a release: paged, never frozen. ``bake``: the pause at full weight, with the
    previous ReplicaSet still up, in the generated Rollout steps."""

    horizon: Duration = Duration("24h", 86_400)
    bake: Duration = Duration("2h", 7_200)
    auto_undo: AutoUndo | None = None  # None: the undo after completion is a person's (paged with the command)


@dataclass(frozen=True)
class Analysis:
    """How the Argo Rollouts analysis samples each signal (explained in the plan)."""

    interval: Duration
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    canary_weight: float = 0.1  # share of the traffic a canary version gets first (its expected delays)
    dry_run: bool = False  # shadow mode: Argo dryRun for the automatic metrics, no freeze from alerts


@dataclass(frozen=True)
class CredentialRef:
    """Where ``driftgate export`` reads a secret at run time: exactly one of an environment variable or a file.

    Only the *reference* lives in the spec (and in memory here); the secret itself is read when a
    request is made and is never stored, rendered or logged.
    """

    env: str  # variable name, or "" when the secret is in a file
    file: str  # path (relative paths are relative to --root), or "" when it is in a variable

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"


@dataclass(frozen=True)
class BasicAuth:
    username: str  # not a secret
    password: CredentialRef


@dataclass(frozen=True)
class PrometheusAuth:
    """How ``driftgate export`` authenticates to Prometheus: at most one credential, plus plain headers.

    ``headers`` (e.g. ``X-Scope-OrgID`` for a multi-tenant store) are *not* secret: they are recorded
    in manifests. Credentials go in ``bearer_token`` or ``basic``.
    """

    bearer_token: CredentialRef | None = None
    basic: BasicAuth | None = None
    headers: tuple[tuple[str, str], ...] = ()  # (name, value), sorted by name

    @property
    def kind(self) -> str:
        return "bearer" if self.bearer_token else "basic" if self.basic else "none"


NO_AUTH = PrometheusAuth()


@dataclass(frozen=True)
class AnalysisAuth:
    """``prometheus.analysis_auth``: what every generated Argo metric sends to Prometheus. ``headers`` are
    plain (e.g. ``X-Scope-OrgID`` of a multi-tenant Mimir/Thanos); a bearer token is a Kubernetes Secret
    in the model's namespace, read by an AnalysisTemplate argument (``valueFrom.secretKeyRef``, masked
    by Argo) and sent as ``Authorization: Bearer {{args.prometheus-token}}``: never in a manifest."""

    headers: tuple[tuple[str, str], ...] = ()
    bearer_token: SecretRef | None = None


@dataclass(frozen=True)
class PrometheusSource:
    address: str
    selector: tuple[tuple[str, str], ...]  # equality matchers common to every signal, sorted
    version_label: str
    evaluation_interval: Duration
    auth: PrometheusAuth = NO_AUTH  # only ``driftgate export`` uses it; rendered config never does
    # How the Rollout passes the canary's version_label value to the analysis: "" for its pod-template
    # hash (podTemplateHashValue: Latest), else a label of the Rollout's pod template (fieldRef).
    version_pod_label: str = ""
    rollout_info_namespace_label: str = "exported_namespace"  # the Rollout's namespace on rollout_info
    analysis_auth: AnalysisAuth | None = None  # how Argo Rollouts' queries authenticate (in the cluster)

    @property
    def version_value_from(self) -> dict[str, dict[str, str]]:
        """The Argo ``valueFrom`` of the analysis' version argument."""
        if not self.version_pod_label:
            return {"podTemplateHashValue": "Latest"}  # type: ignore[dict-item]
        return {"fieldRef": {"fieldPath": f"spec.template.metadata.labels.{self.version_pod_label}"}}


@dataclass(frozen=True)
class ModelSpec:
    name: str  # DNS-1123 label
    spec_path: str  # repository-relative, as shown in headers and messages
    namespace: str
    rollout: str
    team: Team
    authority: RollbackAuthority
    prometheus: PrometheusSource
    budget: Budget
    manual_budget: Budget
    min_history: Duration
    exports: tuple[str, ...]  # repository-relative paths
    freeze: Freeze
    analysis: Analysis
    runbook_base_url: str
    signals: tuple[Signal, ...] = field(default_factory=tuple)
    release: Release = Release()
    object_labels: tuple[tuple[str, str], ...] = ()  # on every generated Kubernetes object, sorted
    object_annotations: tuple[tuple[str, str], ...] = ()
    # history.exclude, then the spans of history.exclude_file, sorted by start; empty: nothing excluded.
    exclude: tuple[ExcludedSpan, ...] = ()
    exclude_file: str = ""  # history.exclude_file, repository-relative ("": none)

    @property
    def alert_for_seconds(self) -> int:
        """The alerts' ``for:``: two rule evaluations, and at least 2 minutes."""
        return max(2 * self.prometheus.evaluation_interval.seconds, 120)

    def signal(self, name: str) -> Signal:
        for s in self.signals:
            if s.name == name:
                return s
        raise KeyError(name)
