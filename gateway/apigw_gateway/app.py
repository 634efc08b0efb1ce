"""The gateway's ASGI application: routes, the front-door middleware and the shared runtime state."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import signal
import time
import traceback
import uuid
from contextlib import asynccontextmanager
from time import perf_counter

import anyio
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import logs, metrics
from .config import Settings
from .keys import InvalidToken, KeySet, KeySetError
from .proxy import Upstream, UpstreamError
from .store import RedisUnavailable, Store, canonical_ip, parse_maintenance
from .users import UsersError, UserStore, valid_username

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
REPORT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
NON_API = {"/healthz": "/healthz", "/readyz": "/readyz", "/metrics": "/metrics",
           "/.well-known/jwks.json": "/.well-known/jwks.json"}
API_ROUTES = {"/auth/login": "/auth/login", "/auth/refresh": "/auth/refresh", "/auth/logout": "/auth/logout"}
METHODS = frozenset(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"))
JSON = "application/json"


class ProcessState:
    """Set by the server process: True once SIGTERM started the drain."""

    draining = False


PROCESS = ProcessState()


class ApiError(Exception):
    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def now_ms():
    return int(time.time() * 1000)


def json_response(status, data, headers=None):
    return Response(orjson.dumps(data), status_code=status, media_type=JSON, headers=headers)


def error_body(status, message, request_id):
    phrase = _PHRASES.get(status, "Error")
    return {"error": phrase, "message": message, "statusCode": status, "requestId": request_id}


_PHRASES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 415: "Unsupported Media Type", 423: "Locked", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class Gateway:
    """Everything a worker shares between requests; keys and users are swapped whole on reload."""

    def __init__(self, settings: Settings):
        self.s = settings
        self.keyset = KeySet.load(settings.jwt_keys_dir, settings.jwt_algorithms, settings.jwt_private_key_passphrase)
        self.users = UserStore.load(settings.users_file)
        for warning in self.keyset.warnings:
            logs.log("warning", "Key set warning", detail=warning)
        self.store = Store(settings)
        self.upstream = Upstream(settings)
        self.audit = logs.AuditLog(settings.audit_log_file)
        # the outcome of the last reload, reported by every JWKS answer (X-Keyset-Reload) with this worker's pid
        self.reload_status = "ok"
        self.workers = settings.workers or os.cpu_count() or 1  # as server.py counts them
        self._reload_lock = None  # made in the event loop by reload()

    def _load(self):
        keyset = KeySet.load(self.s.jwt_keys_dir, self.s.jwt_algorithms, self.s.jwt_private_key_passphrase)
        return keyset, UserStore.load(self.s.users_file)

    async def reload(self):
        """SIGHUP: new keys and users for requests that start from now on; in-flight ones keep theirs.

        Loading (file reads, key parsing, a KDF run for the users' dummy hash) happens in a thread,
        so requests keep being served meanwhile; the swap itself is two assignments.  Reloads run one
        at a time, in the order of the signals: a slow load that read the files before a later SIGHUP
        can never finish last and swap older keys back in.  A load that fails keeps the current keys
        and users, and X-Keyset-Reload says "failed" until a reload succeeds.
        """
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            try:
                keyset, users = await anyio.to_thread.run_sync(self._load)
            except (KeySetError, UsersError) as exc:
                self.reload_status = "failed"
                logs.log("error", "Reload failed, keeping the current keys and users", error=str(exc),
                         active=self.keyset.active_kid, generation=self.keyset.generation)
                return
            self.keyset, self.users, self.reload_status = keyset, users, "ok"
        self.audit.reopen()
        for warning in keyset.warnings:
            logs.log("warning", "Key set warning", detail=warning)
        logs.log("info", "Keys reloaded", active=keyset.active_kid, kids=sorted(keyset.verify_keys),
                 generation=keyset.generation, users=len(users.users))

    # -- helpers used by the endpoints --------------------------------------
    def enforce(self, results, request, username=None):
        for result in results:
            if result.exceeded:
                metrics.RATE_LIMITED.labels(result.limit.scope).inc()
                if result.count == result.limit.max + 1:
                    # audit once per key and window; the metric counts every refusal
                    self.audit.event("RATE_LIMIT_EXCEEDED", username=username, ip=request.state.ip,
                                     request_id=request.state.request_id, scope=result.limit.scope,
                                     key=result.limit.key, limit=result.limit.max)
                raise ApiError(429, f"Rate limit exceeded ({result.limit.scope})",
                               {"Retry-After": str(result.retry_after)})

    async def hit(self, limits, peek=()):
        try:
            return await self.store.hit(limits, peek)
        except RedisUnavailable:
            raise ApiError(503, "Service unavailable: Redis unreachable", {"Retry-After": "5"}) from None

    async def redis(self, builder):
        try:
            return await self.store.run(builder)
        except RedisUnavailable:
            raise ApiError(503, "Service unavailable: Redis unreachable", {"Retry-After": "5"}) from None

    def token_response(self, user):
        keyset = self.keyset
        access, _unused = keyset.issue(token_type="access", subject=user.id, username=user.username,
                                       ttl=self.s.jwt_access_ttl, issuer=self.s.jwt_issuer,
                                       audience=self.s.jwt_audience)
        refresh, claims = keyset.issue(token_type="refresh", subject=user.id, username=user.username,
                                       ttl=self.s.jwt_refresh_ttl, issuer=self.s.jwt_issuer,
                                       audience=self.s.jwt_audience)
        body = {"accessToken": access, "refreshToken": refresh, "tokenType": "Bearer",
                "expiresIn": self.s.jwt_access_ttl, "refreshExpiresIn": self.s.jwt_refresh_ttl}
        return body, claims

    def verify(self, token, token_type):
        return self.keyset.verify(token, token_type=token_type, issuer=self.s.jwt_issuer,
                                  audience=self.s.jwt_audience, leeway=self.s.jwt_leeway)


async def read_json(request: Request, limit: int) -> dict:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith(JSON):
        raise ApiError(415, "Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "Invalid Content-Length")
        if int(declared) > limit:
            raise ApiError(413, f"Request body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"Request body larger than {limit} bytes")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "Malformed JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "JSON body must be an object")
    return data


def string_field(data, name, max_len=4096):
    value = data.get(name)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ApiError(400, f"{name} must be a non-empty string of at most {max_len} characters")
    return value


def bearer_token(request):
    header = request.headers.get("authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Missing bearer token", {"WWW-Authenticate": 'Bearer realm="apigw"'})
    return token.strip()


# -- endpoints ---------------------------------------------------------------

async def healthz(request):
    return Response(b'{"status":"ok","timestamp":%d}' % now_ms(), media_type=JSON)


async def readyz(request):
    gw: Gateway = request.app.state.gw
    try:
        replies = await gw.store.run(lambda p: (p.ping(), p.hgetall(gw.s.key_maintenance)))
        redis_ok = True
        gw.store.maintenance = parse_maintenance(replies[1])
    except RedisUnavailable:
        redis_ok = False
    body = {"status": "ok", "redis": "ok" if redis_ok else "error", "timestamp": now_ms()}
    headers = {}
    if not redis_ok:
        body["status"] = "error"
    elif PROCESS.draining:
        body["status"] = "draining"
    elif gw.store.maintenance.enabled:
        body["status"] = "maintenance"
        body["message"] = gw.store.maintenance.message
        headers["Retry-After"] = str(gw.store.maintenance.retry_after)
    return json_response(200 if body["status"] == "ok" else 503, body, headers)


async def jwks(request):
    """The JWKS, and which worker answered with what: a key rotation polls this over fresh connections
    until every worker of the replica (X-Worker-Pid, X-Workers of them) publishes, then signs with, the
    new key (X-Keyset-Active, X-Keyset-Generation); X-Keyset-Reload is "failed" while the last reload
    of this worker failed and it still serves its previous keys."""
    gw: Gateway = request.app.state.gw
    keyset = gw.keyset  # one key set for the body and the headers, even if a reload swaps it meanwhile
    return Response(keyset.jwks_document, media_type=JSON, headers={
        "Cache-Control": "public, max-age=60", "X-Keyset-Active": keyset.active_kid,
        "X-Keyset-Generation": keyset.generation, "X-Keyset-Reload": gw.reload_status,
        "X-Worker-Pid": str(os.getpid()), "X-Workers": str(gw.workers)})


async def metrics_endpoint(request):
    data, content_type = metrics.render()
    return Response(data, headers={"Content-Type": content_type})


async def login(request):
    gw: Gateway = request.app.state.gw
    s, ip, rid = gw.s, request.state.ip, request.state.request_id
    data = await read_json(request, s.max_body_bytes)
    username = data.get("username")
    password = data.get("password")
    if not valid_username(username):
        # audited (JSON-escaped, truncated) so that probing with hostile names shows up in the audit log
        shown = username[:128] if isinstance(username, str) else None
        metrics.LOGIN_FAILURES.labels("invalid_username").inc()
        gw.audit.event("LOGIN_FAILURE", username=shown, ip=ip, request_id=rid, reason="invalid_username")
        raise ApiError(400, "username must be 1-64 letters, digits or . _ @ + -")
    if not isinstance(password, str) or not password or len(password) > 1024:
        raise ApiError(400, "password must be a non-empty string of at most 1024 characters")
    lockout_key = gw.store.lockout_key(username, ip)
    results, (lock_ttl,) = await gw.hit([gw.store.global_limit(ip), gw.store.auth_limit(ip)], peek=[lockout_key])
    gw.enforce(results, request, username)
    if lock_ttl != -2:
        metrics.LOGIN_FAILURES.labels("locked").inc()
        gw.audit.event("LOGIN_FAILURE", username=username, ip=ip, request_id=rid, reason="locked")
        retry = max(1, -(-lock_ttl // 1000)) if lock_ttl > 0 else s.lockout_duration // 1000
        raise ApiError(423, "Account temporarily locked", {"Retry-After": str(retry)})

    user = await anyio.to_thread.run_sync(gw.users.verify, username, password)
    fail_key = gw.store.loginfail_key(username, ip)
    if user is None:
        replies = await gw.redis(lambda p: (p.incr(fail_key), p.pexpire(fail_key, s.login_failure_window, nx=True)))
        failures = replies[0]
        metrics.LOGIN_FAILURES.labels("invalid_credentials").inc()
        gw.audit.event("LOGIN_FAILURE", username=username, ip=ip, request_id=rid, reason="invalid_credentials",
                       failures=failures)
        if failures >= s.login_max_failures:
            # the lockout replaces the counter: after it expires the user gets a fresh set of attempts
            await gw.redis(lambda p: (p.set(lockout_key, "1", px=s.lockout_duration), p.delete(fail_key)))
            gw.audit.event("ACCOUNT_LOCKED", username=username, ip=ip, request_id=rid, failures=failures,
                           duration=s.lockout_duration // 1000)
            raise ApiError(423, "Account temporarily locked",
                           {"Retry-After": str(max(1, s.lockout_duration // 1000))})
        raise ApiError(401, "Invalid username or password")

    body, refresh = gw.token_response(user)
    tokens_key = gw.store.user_tokens_key(user.id)
    await gw.redis(lambda p: (p.delete(fail_key), p.hset(tokens_key, refresh["jti"], refresh["exp"]),
                              p.expire(tokens_key, s.jwt_refresh_ttl)))
    gw.audit.event("LOGIN_SUCCESS", username=username, ip=ip, request_id=rid, userId=user.id)
    return json_response(200, body)


async def refresh(request):
    gw: Gateway = request.app.state.gw
    s, ip, rid = gw.s, request.state.ip, request.state.request_id
    token = string_field(await read_json(request, s.max_body_bytes), "refreshToken", 8192)
    try:
        claims, problem = gw.verify(token, "refresh"), None
    except InvalidToken as exc:
        claims, problem = None, str(exc)
    peek = [gw.store.blacklist_key(claims["jti"])] if claims else []
    results, ttls = await gw.hit([gw.store.global_limit(ip), gw.store.auth_limit(ip)], peek=peek)
    username = claims.get("username") if claims else None
    gw.enforce(results, request, username)
    if claims is None:
        gw.audit.event("TOKEN_REFRESH", username=None, ip=ip, request_id=rid, outcome="rejected", reason=problem)
        raise ApiError(401, f"Invalid refresh token: {problem}")
    if ttls[0] != -2:  # the blacklist key exists
        gw.audit.event("TOKEN_REFRESH", username=username, ip=ip, request_id=rid, outcome="rejected",
                       reason="revoked", jti=claims["jti"])
        raise ApiError(401, "Refresh token revoked")
    user = gw.users.get(username)
    if user is None or user.id != claims["sub"]:
        gw.audit.event("TOKEN_REFRESH", username=username, ip=ip, request_id=rid, outcome="rejected",
                       reason="unknown user", jti=claims["jti"])
        raise ApiError(401, "Invalid refresh token: unknown user")

    old_jti, remaining = claims["jti"], max(1, claims["exp"] - int(time.time()))
    # claiming the old jti with NX makes rotation single-use even under concurrent refreshes
    claimed = await gw.redis(lambda p: p.set(gw.store.blacklist_key(old_jti), "1", ex=remaining, nx=True))
    if not claimed[0]:
        gw.audit.event("TOKEN_REFRESH", username=username, ip=ip, request_id=rid, outcome="rejected",
                       reason="revoked", jti=old_jti)
        raise ApiError(401, "Refresh token revoked")
    body, new = gw.token_response(user)
    tokens_key = gw.store.user_tokens_key(user.id)
    replies = await gw.redis(lambda p: (p.hdel(tokens_key, old_jti), p.hset(tokens_key, new["jti"], new["exp"]),
                                        p.expire(tokens_key, s.jwt_refresh_ttl), p.hgetall(tokens_key)))
    expired = [jti for jti, exp in replies[-1].items() if int(exp) < time.time()]
    if expired:
        await gw.redis(lambda p: p.hdel(tokens_key, *expired))
    gw.audit.event("TOKEN_REFRESH", username=username, ip=ip, request_id=rid, outcome="success",
                   jti=new["jti"], previousJti=old_jti, userId=user.id)
    return json_response(200, body)


async def logout(request):
    gw: Gateway = request.app.state.gw
    s, ip, rid = gw.s, request.state.ip, request.state.request_id
    token = string_field(await read_json(request, s.max_body_bytes), "refreshToken", 8192)
    try:
        claims = gw.verify(token, "refresh")
    except InvalidToken as exc:
        raise ApiError(401, f"Invalid refresh token: {exc}") from None
    jti, username = claims["jti"], claims.get("username")
    results, _unused = await gw.hit([gw.store.global_limit(ip)])
    gw.enforce(results, request, username)
    remaining = max(1, claims["exp"] - int(time.time()))  # the token's remaining life
    tokens_key = gw.store.user_tokens_key(claims["sub"])
    await gw.redis(lambda p: (p.set(gw.store.blacklist_key(jti), "1", ex=remaining), p.hdel(tokens_key, jti)))
    gw.audit.event("TOKEN_REVOKED", username=username, ip=ip, request_id=rid, jti=jti, ttl=remaining)
    gw.audit.event("LOGOUT", username=username, ip=ip, request_id=rid, userId=claims["sub"])
    return json_response(200, {"status": "ok", "revoked": jti})


async def report(request):
    gw: Gateway = request.app.state.gw
    ip, rid = request.state.ip, request.state.request_id
    # the token is checked locally first so that one Redis round trip counts both the IP and the user;
    # a request with a bad token still counts against its IP before it is refused
    claims, problem = None, None
    try:
        claims = gw.verify(bearer_token(request), "access")
    except (InvalidToken, ApiError) as exc:
        problem = exc
    limits = [gw.store.global_limit(ip)]
    if claims:
        limits.append(gw.store.user_limit(claims["sub"]))
    results, _unused = await gw.hit(limits)
    gw.enforce(results, request, claims.get("username") if claims else None)
    if isinstance(problem, ApiError):
        raise problem
    if problem is not None:
        raise ApiError(401, f"Invalid access token: {problem}", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    report_id = request.path_params["id"]
    if not REPORT_ID_RE.fullmatch(report_id):
        raise ApiError(400, "Invalid report id")
    headers = {"X-Request-Id": rid, "X-User-Id": claims["sub"], "X-Forwarded-For": ip}
    query = request.scope["query_string"].decode("latin-1")
    try:
        result = await gw.upstream.get("/reports/" + report_id, query, headers)
    except UpstreamError as exc:
        metrics.UPSTREAM.labels(str(exc.status)).inc()
        extra = {"Retry-After": str(gw.upstream.breaker.retry_after())} if exc.status == 503 else None
        raise ApiError(exc.status, exc.message, extra) from None
    metrics.UPSTREAM.labels("ok").inc()
    return Response(result.body, status_code=result.status, headers={"Content-Type": result.content_type})


# -- error handling and the front door ------------------------------------------

async def api_error_handler(request, exc: ApiError):
    return json_response(exc.status, error_body(exc.status, exc.message, request.state.request_id), exc.headers)


async def http_error_handler(request, exc: HTTPException):
    headers = dict(exc.headers or {})
    return json_response(exc.status_code, error_body(exc.status_code, exc.detail, request.state.request_id), headers)


async def internal_error_handler(request, exc):
    # the traceback goes to the log (by the front door), never to the client
    return json_response(500, error_body(500, "Internal server error", request.state.request_id))


def route_label(path):
    label = NON_API.get(path) or API_ROUTES.get(path)
    if label:
        return label
    if path.startswith("/reports/"):
        return "/reports/{id}"
    return "unmatched"


class FrontDoor:
    """Request id, client IP, maintenance mode, metrics and the access log, around every request."""

    def __init__(self, app, gw: Gateway):
        self.app = app
        self.gw = gw
        self.hops = gw.s.trust_proxy_hops
        self.access_log = gw.s.access_log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = perf_counter()
        request_id = forwarded = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if REQUEST_ID_RE.fullmatch(candidate):
                    request_id = candidate
            elif name == b"x-forwarded-for" and self.hops:
                forwarded = value.decode("latin-1")
        request_id = request_id or uuid.uuid4().hex
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        if ":" in ip:  # IPv6 (or IPv4-mapped) from the socket: the form keys hold; IPv4 is already canonical
            ip = canonical_ip(ip)
        if forwarded:
            ip = _forwarded_ip(forwarded, self.hops) or ip
        state = scope.setdefault("state", {})
        state["request_id"], state["ip"] = request_id, ip
        path = scope["path"]
        route = route_label(path)
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        status = [500, False]
        id_header = (b"x-request-id", request_id.encode())

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0], status[1] = message["status"], True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            maintenance = self.gw.store.maintenance
            if route == "/healthz" and method == "GET":
                # liveness is probed often and needs nothing from the app: answer here
                body = b'{"status":"ok","timestamp":%d}' % now_ms()
                await send_wrapper({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
                await send_wrapper({"type": "http.response.body", "body": body})
            elif maintenance.enabled and route not in NON_API:
                response = json_response(503, {**error_body(503, maintenance.message, request_id), "maintenance": True},
                                         {"Retry-After": str(maintenance.retry_after)})
                await response(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # the last line of defence: logged, never shown
            logs.log("error", "Unhandled error", requestId=request_id, path=path, error=repr(exc),
                     trace=traceback.format_exc(limit=20))
            if not status[1]:
                response = json_response(500, error_body(500, "Internal server error", request_id))
                await response(scope, receive, send_wrapper)
        finally:
            duration = perf_counter() - start
            metrics.observe_request(method, route, status[0], duration)
            if self.access_log:
                logs.access(requestId=request_id, method=method, path=path, ip=ip, status=status[0],
                            duration=round(duration * 1000, 3))


def _forwarded_ip(header, hops):
    entries = [part.strip() for part in header.split(",") if part.strip()]
    if not entries:
        return None
    candidate = entries[-hops] if len(entries) >= hops else entries[0]
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return None
    return canonical_ip(candidate)


def create_app(settings: Settings | None = None):
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level)
    gw = Gateway(settings)

    @asynccontextmanager
    async def lifespan(app):
        gw.store.start()
        await gw.upstream.start()
        loop = asyncio.get_running_loop()
        reloads = set()  # strong references to running reload tasks

        def on_sighup():
            task = loop.create_task(gw.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        try:
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        logs.log("info", "Gateway worker started", active_kid=gw.keyset.active_kid, generation=gw.keyset.generation)
        try:
            yield
        finally:
            await gw.upstream.close()
            await gw.store.close()
            gw.audit.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/auth/login", login, methods=["POST"]),
        Route("/auth/refresh", refresh, methods=["POST"]),
        Route("/auth/logout", logout, methods=["POST"]),
        Route("/reports/{id}", report, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        ApiError: api_error_handler, HTTPException: http_error_handler, Exception: internal_error_handler})
    app.state.gw = gw
    return FrontDoor(app, gw)
