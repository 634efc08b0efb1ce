"""Redis access: the contract's keys, one pipeline (one round trip) per request where possible.

Connection loss never crashes the gateway: commands raise RedisUnavailable (-> 503), a background
poll re-reads the maintenance hash and logs "Redis connected" when the link comes back.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from . import logs

TRUE_WORDS = ("1", "true", "yes", "on", "enabled")


class RedisUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Maintenance:
    enabled: bool = False
    retry_after: int = 300
    message: str = "Service temporarily unavailable for maintenance"


@dataclass(frozen=True)
class Limit:
    scope: str  # global, user, auth
    key: str
    max: int
    window_ms: int


@dataclass(frozen=True)
class LimitResult:
    limit: Limit
    count: int
    ttl_ms: int

    @property
    def exceeded(self):
        return self.count > self.limit.max

    @property
    def retry_after(self):
        ttl = self.ttl_ms if self.ttl_ms > 0 else self.limit.window_ms
        return max(1, -(-ttl // 1000))


class Store:
    def __init__(self, settings):
        self.s = settings
        timeout = settings.redis_timeout_ms / 1000
        kwargs = {"max_connections": settings.redis_pool_size, "timeout": timeout, "socket_timeout": timeout,
                      "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 1), "health_check_interval": 0}
        if settings.redis_password:
            kwargs["password"] = settings.redis_password
        self.pool = aioredis.BlockingConnectionPool.from_url(settings.redis_url, **kwargs)
        self.client = aioredis.Redis(connection_pool=self.pool)
        self.connected = None  # None = never tried, then True/False
        self.maintenance = Maintenance()
        self._poller = None

    # -- keys --------------------------------------------------------------
    def global_limit(self, ip):
        return Limit("global", self.s.key_ratelimit_global.format(ip=ip), self.s.rate_limit_global_max,
                     self.s.rate_limit_global_window)

    def user_limit(self, user_id):
        return Limit("user", self.s.key_ratelimit_user.format(user_id=user_id), self.s.rate_limit_user_max,
                     self.s.rate_limit_user_window)

    def auth_limit(self, ip):
        return Limit("auth", self.s.key_ratelimit_auth.format(ip=ip), self.s.rate_limit_auth_max,
                     self.s.rate_limit_auth_window)

    def lockout_key(self, username, ip):
        return self.s.key_lockout.format(username=username, ip=ip)

    def loginfail_key(self, username, ip):
        return self.s.key_loginfail.format(username=username, ip=ip)

    def blacklist_key(self, jti):
        return self.s.key_token_blacklist.format(jti=jti)

    def user_tokens_key(self, user_id):
        return self.s.key_token_user.format(user_id=user_id)

    # -- state -------------------------------------------------------------
    def _up(self):
        if self.connected is not True:
            self.connected = True
            logs.log("info", "Redis connected", redis=_safe_url(self.s.redis_url))

    def _down(self, exc):
        if self.connected is not False:
            self.connected = False
            logs.log("error", "Redis connection error", error=str(exc), redis=_safe_url(self.s.redis_url))

    async def run(self, pipe_builder):
        """Build a non-transactional pipeline with pipe_builder(pipe), execute it, return the replies."""
        pipe = self.client.pipeline(transaction=False)
        pipe_builder(pipe)
        try:
            replies = await pipe.execute()
        except (TimeoutError, RedisError, OSError) as exc:
            self._down(exc)
            raise RedisUnavailable(str(exc)) from None
        self._up()
        return replies

    @staticmethod
    def add_limits(pipe, limits):
        # fixed window: INCR, start the window on the first hit (NX keeps an existing TTL), read the TTL
        for limit in limits:
            pipe.incr(limit.key)
            pipe.pexpire(limit.key, limit.window_ms, nx=True)
            pipe.pttl(limit.key)

    @staticmethod
    def limit_results(limits, replies):
        return [LimitResult(limit, replies[i * 3], replies[i * 3 + 2]) for i, limit in enumerate(limits)]

    async def ping(self):
        try:
            await asyncio.wait_for(self.client.ping(), self.s.redis_timeout_ms / 1000)
        except (TimeoutError, RedisError, OSError) as exc:
            self._down(exc)
            return False
        self._up()
        return True

    # -- maintenance poll ----------------------------------------------------
    async def refresh_maintenance(self):
        try:
            fields = await self.client.hgetall(self.s.key_maintenance)
        except (TimeoutError, RedisError, OSError) as exc:
            self._down(exc)
            return
        self._up()
        self.maintenance = parse_maintenance(fields)

    def start(self):
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self):
        interval = self.s.maintenance_poll_ms / 1000
        while True:
            await self.refresh_maintenance()
            await asyncio.sleep(interval)

    async def close(self):
        if self._poller:
            self._poller.cancel()
        await self.client.aclose()
        await self.pool.disconnect()


def parse_maintenance(fields):
    if not fields:
        return Maintenance()
    text = {k.decode(errors="replace") if isinstance(k, bytes) else k:
            v.decode(errors="replace") if isinstance(v, bytes) else v for k, v in fields.items()}
    enabled = text.get("enabled", "").strip().lower() in TRUE_WORDS
    try:
        retry_after = max(0, int(text.get("retry_after") or Maintenance.retry_after))
    except ValueError:
        retry_after = Maintenance.retry_after
    message = text.get("message") or Maintenance.message
    return Maintenance(enabled, retry_after, message[:500])


def _safe_url(url):
    # never log a password embedded in the URL
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest


def now_s():
    return int(time.time())
