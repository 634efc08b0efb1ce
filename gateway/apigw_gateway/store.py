"""Redis access: the contract's keys, one round trip per request where possible.

Connection loss never crashes the gateway: commands raise RedisUnavailable (-> 503), a background
poll re-reads the maintenance hash and logs "Redis connected" when the link comes back.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from . import logs

TRUE_WORDS = ("1", "true", "yes", "on", "enabled")


# Fixed-window counters: INCR, and PEXPIRE the window when the key has no TTL yet (first hit, or a
# counter set by hand).  KEYS = the counters, then keys whose PTTL is only read (e.g. the lockout flag);
# ARGV = number of counters, then each counter's window in ms.  Returns count, ttl per counter, then the PTTLs.
LIMIT_SCRIPT = """
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local count = redis.call('INCR', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    ttl = tonumber(ARGV[i + 1])
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  out[#out + 1] = count
  out[#out + 1] = ttl
end
for i = n + 1, #KEYS do
  out[#out + 1] = redis.call('PTTL', KEYS[i])
end
return out
"""


class RedisUnavailable(Exception):
    pass


def canonical_ip(ip):
    """The one form of a client IP in keys (docs/gateway-contract.md): IPv6 compressed and lower case, an
    IPv4-mapped IPv6 address (a dual-stack listener's view of an IPv4 client) as its IPv4 address; anything
    that is not an IP (``unknown``) as it is.  apigw.ops builds the same form, so it finds what we write."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


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
        self._limit_script = self.client.register_script(LIMIT_SCRIPT)
        self.connected = None  # None = never tried, then True/False
        self.maintenance = Maintenance()
        self._poller = None

    # -- keys --------------------------------------------------------------
    def global_limit(self, ip):
        return Limit("global", self.s.key_ratelimit_global.format(ip=canonical_ip(ip)), self.s.rate_limit_global_max,
                     self.s.rate_limit_global_window)

    def user_limit(self, user_id):
        return Limit("user", self.s.key_ratelimit_user.format(user_id=user_id), self.s.rate_limit_user_max,
                     self.s.rate_limit_user_window)

    def auth_limit(self, ip):
        return Limit("auth", self.s.key_ratelimit_auth.format(ip=canonical_ip(ip)), self.s.rate_limit_auth_max,
                     self.s.rate_limit_auth_window)

    def lockout_key(self, username, ip):
        return self.s.key_lockout.format(username=username, ip=canonical_ip(ip))

    def loginfail_key(self, username, ip):
        return self.s.key_loginfail.format(username=username, ip=canonical_ip(ip))

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

    async def hit(self, limits, peek=()):
        """Count one request against each limit; return (LimitResults, PTTL of each `peek` key).

        One round trip (a Lua script: atomic, and much cheaper for the client than a pipeline).
        """
        keys = [limit.key for limit in limits] + list(peek)
        args = [len(limits)] + [limit.window_ms for limit in limits]
        try:
            replies = await self._limit_script(keys=keys, args=args)
        except (TimeoutError, RedisError, OSError) as exc:
            self._down(exc)
            raise RedisUnavailable(str(exc)) from None
        self._up()
        results = [LimitResult(limit, replies[2 * i], replies[2 * i + 1]) for i, limit in enumerate(limits)]
        return results, replies[2 * len(limits):]

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
