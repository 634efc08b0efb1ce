"""Gateway settings: environment variables (optionally loaded from a production.env-style file).

Every variable, its default and its meaning is declared once in VARIABLES; `Settings.from_env()`
reads them and `python -m apigw_gateway.config` prints the documented example env file.
Durations follow the runbook: `*_WINDOW` values are milliseconds, `*_MS` milliseconds, `*_TTL` seconds.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields

# (name, default, description); the type comes from the Settings field annotation.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("HOST", "0.0.0.0", "Address to listen on."),
    ("PORT", "3000", "TCP port to listen on."),
    ("WORKERS", "1", "Worker processes (the runbook's cluster mode); 0 = one per CPU core."),
    ("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL (redis:// or rediss://, may hold user:password)."),
    ("REDIS_PASSWORD", "", "Redis password, if not given in REDIS_URL."),
    ("REDIS_TIMEOUT_MS", "1000", "Redis connect and command timeout."),
    ("REDIS_POOL_SIZE", "64", "Maximum Redis connections per worker."),
    ("KEY_RATELIMIT_GLOBAL", "ratelimit:global:{ip}", "Key template: per-IP request counter."),
    ("KEY_RATELIMIT_USER", "ratelimit:user:{user_id}", "Key template: per-user request counter."),
    ("KEY_RATELIMIT_AUTH", "ratelimit:auth:{ip}", "Key template: per-IP counter for /auth/* endpoints."),
    ("KEY_LOGINFAIL", "loginfail:{username}:{ip}", "Key template: failed login counter."),
    ("KEY_LOCKOUT", "lockout:{username}:{ip}", "Key template: lockout flag."),
    ("KEY_TOKEN_BLACKLIST", "token:blacklist:{jti}", "Key template: revoked refresh token."),
    ("KEY_TOKEN_USER", "token:user:{user_id}", "Key template: hash of a user's live refresh tokens (jti -> exp)."),
    ("KEY_MAINTENANCE", "gateway:maintenance", "Key: maintenance hash (enabled, retry_after, message)."),
    ("RATE_LIMIT_GLOBAL_MAX", "100", "Requests per window per client IP on API routes."),
    ("RATE_LIMIT_GLOBAL_WINDOW", "60000", "Global rate-limit window (ms)."),
    ("RATE_LIMIT_USER_MAX", "300", "Requests per window per authenticated user."),
    ("RATE_LIMIT_USER_WINDOW", "60000", "Per-user rate-limit window (ms)."),
    ("RATE_LIMIT_AUTH_MAX", "10", "Requests per window per client IP on /auth/login and /auth/refresh."),
    ("RATE_LIMIT_AUTH_WINDOW", "60000", "Auth rate-limit window (ms)."),
    ("LOGIN_MAX_FAILURES", "5", "Failed logins (per username and IP) that trigger a lockout."),
    ("LOGIN_FAILURE_WINDOW", "900000", "Lifetime of the failed-login counter (ms)."),
    ("LOCKOUT_DURATION", "900000", "Lockout time (ms)."),
    ("JWT_KEYS_DIR", "keys", "Key-set directory (jwks.json, keyset.json, PEM files)."),
    ("JWT_PRIVATE_KEY_PASSPHRASE", "", "Passphrase of the active private key, if it is encrypted."),
    ("JWT_ALGORITHMS", "RS256", "Comma-separated algorithms accepted when verifying (RS256, ES256, EdDSA, ...)."),
    ("JWT_ISSUER", "apigw", "iss claim issued and required."),
    ("JWT_AUDIENCE", "apigw-api", "aud claim issued and required."),
    ("JWT_ACCESS_TTL", "900", "Access token lifetime (s)."),
    ("JWT_REFRESH_TTL", "604800", "Refresh token lifetime (s)."),
    ("JWT_LEEWAY", "0", "Clock skew tolerated on exp/nbf (s)."),
    ("USERS_FILE", "users.json", "Users file (see `python -m apigw_gateway.users`)."),
    ("AUDIT_LOG_FILE", "logs/audit-logs.json", "Audit log (JSON lines)."),
    ("LOG_LEVEL", "info", "debug, info, warning or error."),
    ("ACCESS_LOG", "true", "Write one 'Incoming request' JSON line per request to stdout."),
    ("UPSTREAM_URL", "http://127.0.0.1:4000", "Base URL of the upstream (mock) service."),
    ("UPSTREAM_TIMEOUT_MS", "5000", "Upstream response timeout; exceeded -> 504."),
    ("UPSTREAM_POOL_SIZE", "100", "Maximum upstream connections per worker."),
    ("CIRCUIT_BREAKER_THRESHOLD", "5", "Consecutive upstream failures that open the circuit."),
    ("CIRCUIT_BREAKER_RESET_MS", "30000", "Time the circuit stays open before one trial request."),
    ("MAINTENANCE_POLL_MS", "1000", "How often each worker re-reads the maintenance hash."),
    ("MAX_BODY_BYTES", "16384", "Largest accepted request body; larger -> 413."),
    ("TRUST_PROXY_HOPS", "0", "Trusted reverse proxies in front; >0 takes the client IP from X-Forwarded-For."),
    ("SHUTDOWN_DELAY_MS", "0", "On SIGTERM, keep serving (readyz=503 draining) this long before closing."),
    ("SHUTDOWN_TIMEOUT_MS", "30000", "Longest wait for in-flight requests on SIGTERM."),
    ("PROMETHEUS_MULTIPROC_DIR", "", "Metrics directory shared by workers; made automatically when WORKERS>1."),
)


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    workers: int
    redis_url: str
    redis_password: str
    redis_timeout_ms: int
    redis_pool_size: int
    key_ratelimit_global: str
    key_ratelimit_user: str
    key_ratelimit_auth: str
    key_loginfail: str
    key_lockout: str
    key_token_blacklist: str
    key_token_user: str
    key_maintenance: str
    rate_limit_global_max: int
    rate_limit_global_window: int
    rate_limit_user_max: int
    rate_limit_user_window: int
    rate_limit_auth_max: int
    rate_limit_auth_window: int
    login_max_failures: int
    login_failure_window: int
    lockout_duration: int
    jwt_keys_dir: str
    jwt_private_key_passphrase: str
    jwt_algorithms: tuple
    jwt_issuer: str
    jwt_audience: str
    jwt_access_ttl: int
    jwt_refresh_ttl: int
    jwt_leeway: int
    users_file: str
    audit_log_file: str
    log_level: str
    access_log: bool
    upstream_url: str
    upstream_timeout_ms: int
    upstream_pool_size: int
    circuit_breaker_threshold: int
    circuit_breaker_reset_ms: int
    maintenance_poll_ms: int
    max_body_bytes: int
    trust_proxy_hops: int
    shutdown_delay_ms: int
    shutdown_timeout_ms: int
    prometheus_multiproc_dir: str

    @classmethod
    def from_env(cls, environ=None) -> Settings:
        environ = os.environ if environ is None else environ
        defaults = {name: default for name, default, _doc in VARIABLES}
        values = {}
        for field in fields(cls):
            name = field.name.upper()
            raw = environ.get(name, defaults[name]).strip()
            values[field.name] = _convert(name, raw, field.type)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self):
        for name in ("key_ratelimit_global", "key_ratelimit_auth"):
            _require_fields(name, getattr(self, name), {"ip"})
        _require_fields("key_ratelimit_user", self.key_ratelimit_user, {"user_id"})
        _require_fields("key_token_user", self.key_token_user, {"user_id"})
        _require_fields("key_loginfail", self.key_loginfail, {"username", "ip"})
        _require_fields("key_lockout", self.key_lockout, {"username", "ip"})
        _require_fields("key_token_blacklist", self.key_token_blacklist, {"jti"})
        positive = ("port", "rate_limit_global_max", "rate_limit_global_window", "rate_limit_user_max",
                    "rate_limit_user_window", "rate_limit_auth_max", "rate_limit_auth_window",
                    "login_max_failures", "login_failure_window", "lockout_duration", "jwt_access_ttl",
                    "jwt_refresh_ttl", "redis_timeout_ms", "upstream_timeout_ms", "circuit_breaker_threshold",
                    "maintenance_poll_ms", "max_body_bytes", "redis_pool_size", "upstream_pool_size")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.upper()} must be a positive number, got {getattr(self, name)!r}")
        if not self.jwt_algorithms:
            raise ConfigError("JWT_ALGORITHMS must name at least one algorithm")
        if any(alg.upper().startswith("HS") or alg.lower() == "none" for alg in self.jwt_algorithms):
            raise ConfigError("JWT_ALGORITHMS may only hold asymmetric algorithms (RS*, PS*, ES*, EdDSA)")


class ConfigError(ValueError):
    pass


def _require_fields(name, template, wanted):
    import string

    present = {part[1] for part in string.Formatter().parse(template) if part[1] is not None}
    if present != wanted:
        raise ConfigError("{}={!r} must use exactly the fields {}".format(
            name.upper(), template, ", ".join(f"{{{w}}}" for w in sorted(wanted))))


def _convert(name, raw, kind):
    if kind in ("int", int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if kind in ("bool", bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    if kind in ("tuple", tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def parse_env_file(path):
    """KEY=VALUE lines; blank lines, '#' comments, `export ` prefixes and matching quotes allowed."""
    values = {}
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[len("export "):].lstrip()
            key, sep, value = line.partition("=")
            key = key.strip()
            if not sep or not key.isidentifier():
                raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            elif " #" in value:
                value = value.split(" #", 1)[0].rstrip()
            values[key] = value
    return values


def load_env_file(path, environ=None):
    """Apply an env file; variables already set in the environment win (as with `docker compose`)."""
    environ = os.environ if environ is None else environ
    for key, value in parse_env_file(path).items():
        environ.setdefault(key, value)


def example_env_file():
    lines = ["# apigw reference gateway: every variable with its default.",
             "# The process environment overrides values from this file.", ""]
    for name, default, doc in VARIABLES:
        lines.append(f"# {doc}")
        lines.append(f"{name}={default}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(example_env_file())
