"""Mock upstream service (the runbook's mock-service) that the gateway fronts.

    python -m apigw_gateway.upstream --port 4000 [--host 127.0.0.1]

GET /healthz                      {"status":"ok"}
GET /reports/{id}                 a small JSON report echoing the X-Request-Id and X-User-Id it got
GET /reports/{id}?delay_ms=N      answers after N ms (tests: timeouts, draining)
GET /reports/{id}?status=N        answers with status N (tests: 5xx -> 502, circuit breaker)
GET /reports/missing              404
GET /stats                        {"inflight": N}: requests being answered now (tests wait on it)
"""

from __future__ import annotations

import argparse
import asyncio
import time
from urllib.parse import parse_qs

import orjson

JSON_HEADERS = [(b"content-type", b"application/json")]
INFLIGHT = [0]


async def _send(send, status, body):
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if scope["method"] != "GET":
        return await _send(send, 405, {"error": "Method Not Allowed"})
    if path == "/healthz":
        return await _send(send, 200, {"status": "ok", "timestamp": int(time.time() * 1000)})
    if path == "/stats":
        return await _send(send, 200, {"inflight": INFLIGHT[0]})
    if not path.startswith("/reports/") or path.count("/") != 2:
        return await _send(send, 404, {"error": "Not Found"})
    report_id = path[len("/reports/"):]
    query = parse_qs(scope["query_string"].decode("latin-1")) if scope["query_string"] else {}
    delay = _int(query.get("delay_ms"), 0, 60000)
    if delay:
        INFLIGHT[0] += 1
        try:
            await asyncio.sleep(delay / 1000)
        finally:
            INFLIGHT[0] -= 1
    status = _int(query.get("status"), 200, 599) or 200
    if report_id == "missing":
        status = 404
    if status != 200:
        return await _send(send, status, {"error": f"upstream status {status}", "id": report_id})
    headers = {k: v for k, v in scope["headers"] if k in (b"x-request-id", b"x-user-id")}
    await _send(send, 200, {
        "id": report_id,
        "title": f"Report {report_id}",
        "status": "ready",
        "generatedAt": int(time.time() * 1000),
        "requestId": headers.get(b"x-request-id", b"").decode("latin-1"),
        "userId": headers.get(b"x-user-id", b"").decode("latin-1"),
        "rows": [{"metric": "requests", "value": 1234}, {"metric": "errors", "value": 2}],
    })


def _int(values, default, maximum):
    try:
        return max(0, min(maximum, int(values[0]))) if values else default
    except ValueError:
        return default


def main(argv=None):
    import uvicorn

    parser = argparse.ArgumentParser(description="Mock upstream service for the reference gateway.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4000)
    args = parser.parse_args(argv)
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    uvicorn.run(app, host=args.host, port=args.port, loop=loop, access_log=False, log_level="warning",
                server_header=False, backlog=2048, timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
