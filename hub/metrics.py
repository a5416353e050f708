"""The hub's Prometheus metrics: what an operator needs to see, no participant or case id.

Counters and histograms live in the process (``HubMetrics``); gauges that describe the store
(queue depths by age, purged cases) are read from it when /metrics is scraped.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Routes whose requests last as long as a connection does (a push stream): their lifetimes go
# to a histogram of their own, not into the request latencies.
LONG_LIVED_ROUTES = frozenset({"/v1/stream"})
STREAM_BUCKETS = (1.0, 10.0, 60.0, 600.0, 3600.0, 6 * 3600.0, 24 * 3600.0, float("inf"))


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "livcr_hub_requests",
            "Requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "livcr_hub_request_seconds", "Request latency", ["route"], registry=self.registry
        )
        self.stream_lifetimes = Histogram(
            "livcr_hub_stream_seconds",
            "How long push streams (WebSockets) stayed open",
            buckets=STREAM_BUCKETS,
            registry=self.registry,
        )
        self.envelopes = Counter(
            "livcr_hub_envelopes_accepted",
            "Envelopes accepted, by purpose",
            ["purpose"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "livcr_hub_refusals",
            "Requests refused, by error code",
            ["code"],
            registry=self.registry,
        )
        # Children bound once: ``labels()`` takes the metric's lock and builds a key per call,
        # and every request would pay that three times. The metrics keep a child per label set
        # for good anyway, so holding them here adds nothing that grows (purposes and codes
        # are closed sets).
        self._per_route: dict[tuple[str, int], tuple[Counter, Histogram | None]] = {}
        self._per_purpose: dict[str, Counter] = {}
        self._per_code: dict[str, Counter] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one request of ``route`` answered with ``status`` and record its latency (a
        push stream's lifetime goes to ``stream_lifetimes``)."""
        children = self._per_route.get((route, status))
        if children is None:
            latency = None if route in LONG_LIVED_ROUTES else self.latency.labels(route)
            children = (self.requests.labels(route, str(status)), latency)
            self._per_route[(route, status)] = children
        children[0].inc()
        if children[1] is not None:
            children[1].observe(seconds)
        else:
            self.stream_lifetimes.observe(seconds)

    def accepted(self, purpose: str) -> None:
        """One envelope accepted (not a resubmission answered with its receipt)."""
        child = self._per_purpose.get(purpose)
        if child is None:
            child = self._per_purpose[purpose] = self.envelopes.labels(purpose)
        child.inc()

    def refused(self, code: str) -> None:
        child = self._per_code.get(code)
        if child is None:
            child = self._per_code[code] = self.refusals.labels(code)
        child.inc()


def gauge_lines(values: dict[str, int], labelled: dict[str, dict[str, int]]) -> str:
    """Prometheus text for plain gauges and for gauges with one label (name -> label -> value;
    the label is named by the part of the name after its last "__")."""
    lines = [f"livcr_hub_{name} {value}\n" for name, value in sorted(values.items())]
    for name, by_label in sorted(labelled.items()):
        metric, label = name.rsplit("__", 1)
        lines += [
            f'livcr_hub_{metric}{{{label}="{key}"}} {value}\n'
            for key, value in sorted(by_label.items())
        ]
    return "".join(lines)
