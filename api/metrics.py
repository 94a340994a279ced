"""Prometheus metrics of the service (exposed at /metrics).

Two registries: the HTTP server's, and the pipeline's (worker, indexer), which may live in a child process
(see api/pipeline.py); /metrics shows both. Under ``--workers`` (api/workers.py), ``PROMETHEUS_MULTIPROC_DIR``
is set before any process imports prometheus_client: every process then writes its values to files there
and /metrics sums them, whichever worker answers. The gauges say how their values from several processes
combine (their one writer's latest value, or the sum over the processes alive)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, Metric

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REGISTRY = CollectorRegistry()
PIPELINE = CollectorRegistry()

REQUESTS = Counter("docchain_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram(
    "docchain_http_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
    registry=REGISTRY,
)
SUBMISSIONS = Counter("docchain_submissions_total", "submissions accepted (new)", registry=REGISTRY)
ANCHORED = Counter("docchain_anchored_total", "submissions seen anchored by the indexer", registry=PIPELINE)
TXS = Counter("docchain_transactions_total", "transactions sent by the relayer", ["kind"], registry=PIPELINE)
REVERTED = Counter(
    "docchain_transactions_reverted_total", "relayer transactions that reverted on chain (gas spent)", registry=PIPELINE
)
BATCH_SIZE = Histogram(
    "docchain_batch_size",
    "registrations per batch transaction",
    buckets=(1, 5, 10, 25, 50, 100, 200, 300, 500),
    registry=PIPELINE,
)
_LATEST: Final = "mostrecent"  # one pipeline works at a time: the value it set last
OUTBOX = Gauge(
    "docchain_outbox_pending", "submissions waiting in the outbox", registry=PIPELINE, multiprocess_mode=_LATEST
)
INDEXED_BLOCK = Gauge("docchain_indexed_block", "last block indexed", registry=PIPELINE, multiprocess_mode=_LATEST)
CHAIN_HEAD = Gauge("docchain_chain_head", "latest block seen on the node", registry=PIPELINE, multiprocess_mode=_LATEST)
REORGS = Counter("docchain_reorgs_total", "chain reorganisations handled by the indexer", registry=PIPELINE)
NODE_ERRORS = Counter(
    "docchain_node_errors_total", "failed attempts to reach the node", ["component"], registry=PIPELINE
)
SSE_CLIENTS = Gauge(
    "docchain_sse_clients", "open server-sent-event streams", registry=REGISTRY, multiprocess_mode="livesum"
)
RELAYER_BALANCE = Gauge(
    "docchain_relayer_balance_wei",
    "the relayer's balance as last read (checked against DOCCHAIN_RELAYER_MIN_BALANCE_WEI)",
    registry=REGISTRY,
    multiprocess_mode=_LATEST,
)
RELAYER_REFUSED = Counter(
    "docchain_relayer_refused_total",
    "relayed writes refused by a limit: key-rate, signer-rate, key-quota, signer-quota (429), balance (503)",
    ["limit"],
    registry=REGISTRY,
)


class _Spending:
    """``docchain_relayer_spent_wei_total{key}``: read from the database at each scrape (the worker charges
    each receipt's fee there, once), so it survives restarts and every replica shows the same totals."""

    def __init__(self, totals: Mapping[str, int]) -> None:
        self.totals = totals

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "docchain_relayer_spent_wei",
            "wei the relayer spent on each client's writes (receipts' gas used x effective gas price; "
            "a batch split evenly over its entries); key: the client id, key-<hash> or ip-<hash>",
            labels=["key"],
        )
        for key in sorted(self.totals):
            family.add_metric([key], float(self.totals[key]))
        yield family


def spending_text(totals: Mapping[str, int]) -> bytes:
    return generate_latest(_Spending(totals))  # type: ignore[arg-type]


def every_process() -> bytes:
    """In multiprocess mode: the values every process wrote to its files, summed (the pipelines' included)."""
    gathered = CollectorRegistry()
    multiprocess.MultiProcessCollector(gathered)
    return generate_latest(gathered)
