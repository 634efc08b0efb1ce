"""Upstream calls with a circuit breaker.

Failures (connection errors, timeouts, 5xx answers) count; CIRCUIT_BREAKER_THRESHOLD consecutive
failures open the circuit for CIRCUIT_BREAKER_RESET_MS, during which requests fail fast with 503.
After that one trial request is let through (half-open): success closes the circuit, failure
re-opens it.  State is per worker process, like the connection pool.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp

from . import logs

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
HOP_BY_HOP = ("connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length")


class CircuitBreaker:
    def __init__(self, threshold, reset_ms, clock=time.monotonic):
        self.threshold = threshold
        self.reset_s = reset_ms / 1000
        self.clock = clock
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._trial_running = False

    def allow(self):
        """True if a request may go upstream now."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self.clock() - self.opened_at >= self.reset_s:
            self.state = HALF_OPEN
            self._trial_running = False
        if self.state == HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def retry_after(self):
        return max(1, int(self.reset_s - (self.clock() - self.opened_at)) + 1)

    def abandon(self):
        """The trial request ended without an answer either way (e.g. the client went away)."""
        if self.state == HALF_OPEN:
            self._trial_running = False

    def success(self):
        if self.state != CLOSED:
            logs.log("info", "Upstream circuit closed")
        self.state, self.failures, self._trial_running = CLOSED, 0, False

    def failure(self):
        self.failures += 1
        if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.threshold):
            self.state, self.opened_at, self._trial_running = OPEN, self.clock(), False
            logs.log("warning", "Upstream circuit opened", failures=self.failures)


@dataclass
class UpstreamResult:
    status: int
    body: bytes
    content_type: str
    headers: list


class UpstreamError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status  # 502, 503 or 504
        self.message = message


class Upstream:
    def __init__(self, settings):
        self.base = settings.upstream_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=settings.upstream_timeout_ms / 1000)
        self.pool_size = settings.upstream_pool_size
        self.breaker = CircuitBreaker(settings.circuit_breaker_threshold, settings.circuit_breaker_reset_ms)
        self.session = None

    async def start(self):
        connector = aiohttp.TCPConnector(limit=self.pool_size, keepalive_timeout=30, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(connector=connector, timeout=self.timeout, auto_decompress=False,
                                             skip_auto_headers=("User-Agent",))

    async def close(self):
        if self.session:
            await self.session.close()

    async def get(self, path, query, headers) -> UpstreamResult:
        if not self.breaker.allow():
            raise UpstreamError(503, "upstream circuit open")
        url = self.base + path + ("?" + query if query else "")
        try:
            async with self.session.get(url, headers=headers, allow_redirects=False) as response:
                body = await response.read()
                status = response.status
                content_type = response.headers.get("Content-Type", "application/octet-stream")
                passed = [(k, v) for k, v in response.headers.items()
                          if k.lower() not in HOP_BY_HOP and k.lower() not in ("content-type", "date", "server")]
        except TimeoutError:
            self.breaker.failure()
            raise UpstreamError(504, "upstream timed out") from None
        except (aiohttp.ClientError, OSError) as exc:
            self.breaker.failure()
            raise UpstreamError(502, f"upstream unreachable: {type(exc).__name__}") from None
        except BaseException:
            self.breaker.abandon()
            raise
        if status >= 500:
            self.breaker.failure()
            raise UpstreamError(502, f"upstream answered {status}")
        self.breaker.success()
        return UpstreamResult(status, body, content_type, passed)
