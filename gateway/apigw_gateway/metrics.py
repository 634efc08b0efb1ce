"""Prometheus metrics named as the runbook's PromQL expects.

With several workers PROMETHEUS_MULTIPROC_DIR must be set before this module is imported
(the launcher does that); /metrics then aggregates every worker's samples.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests served.", ("method", "route", "status"))
HTTP_DURATION = Histogram("http_request_duration_seconds", "HTTP request duration.", ("method", "route"),
                          buckets=BUCKETS)
RATE_LIMITED = Counter("rate_limit_exceeded_total", "Requests refused by a rate limit.", ("scope",))
LOGIN_FAILURES = Counter("login_failures_total", "Failed logins.", ("reason",))
UPSTREAM = Counter("upstream_requests_total", "Requests sent to the upstream, by outcome.", ("outcome",))
# 1 for the event loop and HTTP parser the workers serve with.  An Info metric has no multiprocess mode;
# "max" folds every worker's sample into one series per (loop, http) pair.
SERVER_INFO = Gauge("gateway_server_info", "Event loop and HTTP parser the gateway workers serve with.",
                    ("loop", "http"), multiprocess_mode="max")

_request_children = {}
_duration_children = {}


def observe_request(method, route, status, seconds):
    key = (method, route, status)
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = HTTP_REQUESTS.labels(method, route, str(status))
    child.inc()
    key = (method, route)
    timer = _duration_children.get(key)
    if timer is None:
        timer = _duration_children[key] = HTTP_DURATION.labels(method, route)
    timer.observe(seconds)


def set_server_info(loop, http):
    SERVER_INFO.labels(loop, http).set(1)


def render():
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry = DEFAULT_REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
