"""Confirm that EVERY worker of every gateway replica serves one key set (stdlib only; run by apigw.ops.jwt_rotation).

    python confirm_workers.py --url http://127.0.0.1:8080 [--url ...] --kids KID1,KID2 --active KID1 [--timeout 60]

The workers of a replica share one listening socket, so a request reaches whichever worker accepts it. This asks
GET /.well-known/jwks.json over a new connection each time, and remembers the last answer of each worker
(X-Worker-Pid): the kids of the body in order, X-Keyset-Active, X-Keyset-Generation, X-Keyset-Reload. A replica is
confirmed once X-Workers distinct workers have answered with exactly --kids and --active. A gateway that does not
send X-Worker-Pid / X-Workers is taken as one worker (and said so in the result).

Prints one JSON object: {"confirmed": bool, "replicas": [{url, workers, confirmed, stale, probes, reporting}]}.
--stop-on-stale gives up on a replica at the first worker that serves something else (before a reload: is one needed?).
Exit 0: every replica confirmed; 3: not within --timeout (the result says which workers serve what); 2: bad input.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
import urllib.parse

PATH = "/.well-known/jwks.json"


def probe(url, timeout):
    """One answer from whichever worker accepts a new connection: (pid, report) or (None, error text)."""
    parts = urllib.parse.urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path.rstrip("/") + PATH, headers={"Connection": "close"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return None, f"HTTP {response.status}"
        kids = [key.get("kid") for key in json.loads(body).get("keys", [])]
        pid = response.getheader("X-Worker-Pid")
        return pid or "-", {
            "kids": kids,
            "active": response.getheader("X-Keyset-Active"),
            "generation": response.getheader("X-Keyset-Generation"),
            "reload": response.getheader("X-Keyset-Reload"),
            "workers": int(response.getheader("X-Workers") or 1) if pid else 1,
            "reporting": bool(pid),
        }
    except (OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


def wanted(report, kids, active):
    # without X-Keyset-Active (another gateway) the first published kid is taken as the signing key
    signing = report["active"] or (report["kids"][0] if report["kids"] else None)
    return report["kids"] == kids and signing == active


def confirm(url, kids, active, deadline, interval, stop_on_stale=False):
    seen, probes, error, workers, reporting = {}, 0, None, None, True
    while True:
        pid, report = probe(url, timeout=5)
        probes += 1
        if pid is None:
            error = report
        else:
            seen[pid] = report
            workers, reporting = report["workers"], report["reporting"]
        good = sorted(p for p, r in seen.items() if wanted(r, kids, active))
        if workers is not None and len(good) >= workers:
            break
        if stop_on_stale and pid is not None and not wanted(report, kids, active):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    stale = {p: {k: r[k] for k in ("active", "kids", "generation", "reload")}
             for p, r in seen.items() if not wanted(r, kids, active)}
    generations = sorted({seen[p]["generation"] for p in good if seen[p]["generation"]})
    return {"url": url, "workers": workers, "confirmed": good, "stale": stale, "probes": probes,
            "reporting": reporting, "generation": generations[0] if len(generations) == 1 else None,
            "error": error if not seen else None,
            "ok": workers is not None and len(good) >= workers}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", action="append", required=True, help="base URL of a replica (repeat)")
    parser.add_argument("--kids", required=True, help="the kids the JWKS must list, in order, comma-separated")
    parser.add_argument("--active", required=True, help="the kid every worker must sign with")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for all replicas together")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between two requests")
    parser.add_argument("--stop-on-stale", action="store_true",
                        help="give up on a replica at the first worker that serves another key set (a quick check)")
    args = parser.parse_args(argv)
    kids = [kid for kid in args.kids.split(",") if kid]
    if not kids or args.active not in kids:
        print(json.dumps({"confirmed": False, "msg": "--active must be one of --kids"}))
        return 2
    deadline = time.monotonic() + args.timeout
    replicas = [confirm(url, kids, args.active, deadline, args.interval, args.stop_on_stale) for url in args.url]
    ok = all(replica["ok"] for replica in replicas)
    print(json.dumps({"confirmed": ok, "kids": kids, "active": args.active, "replicas": replicas}))
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
