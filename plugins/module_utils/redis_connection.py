# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way apigw.ops connects to Redis: options, client construction, error messages.

Every module builds its connection options with ``redis_connection_argument_spec()``
(documented once in the ``apigw.ops.redis_connection`` doc fragment) and opens the
connection with ``connect(module)``.  Replies are always decoded to ``str`` with
``surrogateescape``, so values compare like with like and arbitrary bytes round-trip.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import traceback
from contextlib import contextmanager

REDIS_IMPORT_ERROR = None
try:
    import redis
    from redis import exceptions as redis_exceptions
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry
    from redis.connection import parse_url as redis_parse_url
    HAS_REDIS = True
except ImportError:
    HAS_REDIS = False
    REDIS_IMPORT_ERROR = traceback.format_exc()

MISSING_REDIS_MSG = (
    "The Python library 'redis' is required on the host that runs this module "
    "(pip install 'redis[hiredis]'); it could not be imported."
)
ENCODING_ERRORS = "surrogateescape"


def redis_connection_argument_spec():
    """Connection options shared by every module (see the redis_connection doc fragment).

    The Redis ACL user is ``redis_username`` (not ``username``) in every module, because
    ``username`` is the gateway's user in the runbook's words (gateway_lockout) and one
    ``module_defaults`` block must mean the same thing to every module of the group.
    """
    return dict(
        host=dict(type="str", default="localhost"),
        port=dict(type="int", default=6379),
        # a URL may carry user:password; the password alone is masked too, see connect()
        url=dict(type="str", no_log=True),
        redis_username=dict(type="str"),
        password=dict(type="str", no_log=True),
        db=dict(type="int", default=0),
        tls=dict(type="bool", default=False),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path"),
        mode=dict(type="str", default="standalone", choices=["standalone", "cluster", "sentinel"]),
        sentinel_hosts=dict(type="list", elements="str"),
        sentinel_master=dict(type="str", default="mymaster"),
        socket_timeout=dict(type="float", default=10.0),
    )


class RedisOpsError(Exception):
    """A one-line, actionable failure; modules pass str(exc) to fail_json."""


def _split_hostport(text, default_port):
    text = text.strip()
    if text.startswith("["):  # [::1]:26379
        host, _sep, rest = text[1:].partition("]")
        port = rest.lstrip(":") or default_port
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, default_port
    try:
        return host, int(port)
    except ValueError:
        raise RedisOpsError("Invalid sentinel address %r: expected host:port." % text)


def client_kwargs(params):
    """redis-py keyword arguments built from module parameters (no url)."""
    kwargs = dict(
        username=params.get("redis_username") or None,
        password=params.get("password") or None,
        socket_timeout=params.get("socket_timeout"),
        socket_connect_timeout=params.get("socket_timeout"),
        decode_responses=True,
        encoding_errors=ENCODING_ERRORS,
        # one quick retry rides out a blip (a reset); a timeout is not retried, so a server that
        # never answers (or a plain port that never answers a TLS handshake) fails in one socket_timeout
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), 1,
                    supported_errors=(redis_exceptions.ConnectionError,)),
    )
    if params.get("tls"):
        kwargs.update(
            ssl=True,
            ssl_cert_reqs="required" if params.get("validate_certs", True) else "none",
            ssl_check_hostname=bool(params.get("validate_certs", True)),
            ssl_ca_certs=params.get("ca_path"),
            ssl_certfile=params.get("client_cert"),
            ssl_keyfile=params.get("client_key"),
        )
    return kwargs


def target_description(params):
    if params.get("url"):
        return _redact_url(params["url"])
    if params.get("mode") == "sentinel":
        return "sentinel master %s via %s" % (params.get("sentinel_master"),
                                              ",".join(params.get("sentinel_hosts") or []))
    return "%s:%s" % (params.get("host"), params.get("port"))


def _redact_url(url):
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest


class RedisTarget:
    """A connected deployment: the client for commands, and one client per primary for SCAN."""

    def __init__(self, client, mode, description, tls=None):
        self.client = client
        self.mode = mode
        self.description = description
        self.tls = tls  # the TLS setting of the connection, for the first contact's messages

    def primaries(self):
        """One plain Redis client per primary: the whole keyspace is the union of their keyspaces."""
        if self.mode == "cluster":
            return [self.client.get_redis_connection(node) for node in self.client.get_primaries()]
        return [self.client]

    def node_name(self, node_client):
        if self.mode == "sentinel":
            with translate_errors(self.description):
                return "%s:%s" % node_client.connection_pool.get_master_address()
        kwargs = node_client.connection_pool.connection_kwargs
        if "path" in kwargs:
            return "unix:%s" % kwargs["path"]
        return "%s:%s" % (kwargs.get("host"), kwargs.get("port"))

    def check_ready(self):
        """PING every primary; in cluster mode also require cluster_state:ok."""
        for node in self.primaries():
            name = self.node_name(node)
            with translate_errors(name, connect_tls=bool(self.tls)):
                node.ping()
                if self.mode == "cluster":
                    state = node.execute_command("CLUSTER INFO")
                    if isinstance(state, dict):
                        ok = state.get("cluster_state") == "ok"
                    else:
                        ok = "cluster_state:ok" in str(state)
                    if not ok:
                        raise RedisOpsError(
                            "Redis cluster is not healthy (cluster_state is not ok on %s): "
                            "a node is down or slots are uncovered; nothing was changed." % name)
        return self


def _sentinel_master_client(params, kwargs):
    """A client of the current master, after asking the sentinels who it is.

    The sentinels get the same credentials and TLS settings as the data nodes; when every
    sentinel rejects the credentials (sentinels commonly ask none, or do not know the ACL user
    of the data nodes), they are asked again without them.  Every way discovery can fail is
    one line that names the sentinels and what to check.
    """
    hosts = params.get("sentinel_hosts") or []
    if not hosts:
        raise RedisOpsError("mode=sentinel needs sentinel_hosts (a list of host:port).")
    addresses = [_split_hostport(h, 26379) for h in hosts]
    names = ["%s:%d" % address for address in addresses]
    master = params.get("sentinel_master")
    sentinel_kwargs = {k: v for k, v in kwargs.items() if k != "decode_responses"}
    sentinel = redis.Sentinel(addresses, sentinel_kwargs=sentinel_kwargs, **kwargs)
    errors = _ask_sentinels(sentinel, master, names)
    if errors and all(isinstance(e, redis_exceptions.AuthenticationError) for e in errors) \
            and (sentinel_kwargs.get("username") or sentinel_kwargs.get("password")):
        sentinel_kwargs = {k: v for k, v in sentinel_kwargs.items() if k not in ("username", "password")}
        sentinel = redis.Sentinel(addresses, sentinel_kwargs=sentinel_kwargs, **kwargs)
        errors = _ask_sentinels(sentinel, master, names)
    if errors:
        if any("unknown command" in str(e).lower() for e in errors):
            index = next(i for i, e in enumerate(errors) if "unknown command" in str(e).lower())
            raise RedisOpsError(
                "%s is not a sentinel (it does not know the SENTINEL command): sentinel_hosts lists "
                "the sentinels (port 26379 by default), not the data nodes." % names[index])
        messages = [describe_error(e, "sentinel " + n, bool(params.get("tls"))) for e, n in zip(errors, names)]
        for message in messages:  # authentication, TLS, an error reply: say what it was
            if not message.startswith(("Cannot connect to Redis", "Timed out talking to Redis")):
                raise RedisOpsError(message)
        reasons = {}
        for name, error in zip(names, errors):
            reason = re.sub(r"^Error \S+ connecting to \S+?\. ", "", _first_line(error)).rstrip(".")
            reasons.setdefault(reason, []).append(name)
        raise RedisOpsError(
            "No sentinel of sentinel_hosts answered (%s). Check sentinel_hosts, that the sentinels "
            "run, and tls; nothing was changed." % "; ".join(
                "%s: %s" % (", ".join(hosts), reason) for reason, hosts in reasons.items()))
    return sentinel.master_for(master, db=params.get("db", 0), **kwargs)


def _ask_sentinels(sentinel, master, names):
    """[] when a sentinel names the master, up; else one exception per sentinel that failed.

    Raises RedisOpsError when sentinels answer but do not know the master, or report it down.
    """
    errors, monitored, down = [], set(), None
    for node in sentinel.sentinels:
        try:
            masters = node.sentinel_masters()
        except redis_exceptions.RedisError as exc:
            errors.append(exc)
            continue
        monitored.update(masters)
        state = masters.get(master)
        if state is None:
            continue
        if sentinel.check_master_state(state, master):
            return []
        down = state
    if len(errors) == len(names):
        return errors
    if down is not None:
        raise RedisOpsError(
            "The sentinels at %s report master %r at %s:%s as down (%s): a failover may be under way; "
            "nothing was changed, retry once they name a master." % (
                ",".join(names), master, down.get("ip"), down.get("port"), down.get("flags")))
    raise RedisOpsError(
        "The sentinels at %s monitor no master named %r (they monitor: %s). Check sentinel_master."
        % (",".join(names), master, ", ".join(sorted(monitored)) or "nothing"))


def open_target(params):
    """Build and verify a RedisTarget from module parameters; raises RedisOpsError."""
    if not HAS_REDIS:
        raise RedisOpsError(MISSING_REDIS_MSG)
    mode = params.get("mode") or "standalone"
    description = target_description(params)
    kwargs = client_kwargs(params)
    tls = bool(params.get("tls") or (params.get("url") or "").startswith("rediss://"))
    with translate_errors(description, connect_tls=tls):
        if params.get("url"):
            url_kwargs = dict(kwargs)
            for key in ("username", "password"):
                if url_kwargs.get(key) is None:
                    url_kwargs.pop(key)
            if not params.get("tls"):
                for key in [k for k in url_kwargs if k.startswith("ssl")]:
                    url_kwargs.pop(key)
            if url_kwargs.get("ssl"):
                url_kwargs.pop("ssl")
            if mode == "cluster":
                client = redis.RedisCluster.from_url(params["url"], **url_kwargs)
            else:
                if params.get("url").startswith("unix://"):
                    url_kwargs = {k: v for k, v in url_kwargs.items() if not k.startswith("ssl")}
                client = redis.Redis.from_url(params["url"], **url_kwargs)
        elif mode == "cluster":
            client = redis.RedisCluster(host=params["host"], port=params["port"], **kwargs)
        elif mode == "sentinel":
            client = _sentinel_master_client(params, kwargs)
        else:
            client = redis.Redis(host=params["host"], port=params["port"], db=params.get("db", 0), **kwargs)
    return RedisTarget(client, mode, description, tls=tls).check_ready()


def connect(module):
    """Open the connection for a module, or fail_json with one line."""
    if not HAS_REDIS:
        module.fail_json(msg=MISSING_REDIS_MSG, exception=REDIS_IMPORT_ERROR)
    mask_url_secrets(module)
    try:
        return open_target(module.params)
    except RedisOpsError as exc:
        module.fail_json(msg=str(exc))


def mask_url_secrets(module):
    """no_log masks the whole url; also mask its password alone, wherever it might appear."""
    url = module.params.get("url")
    if url and HAS_REDIS:
        try:
            password = redis_parse_url(url).get("password")
        except (ValueError, TypeError):
            password = None
        if password:
            module.no_log_values.add(password)


def _first_line(text):
    text = str(text).strip()
    return text.splitlines()[0] if text else "no detail"


def describe_error(exc, target, connect_tls=None):
    """One actionable line for a redis-py exception.

    ``connect_tls``: None in the middle of an operation; the connection's tls setting (bool) while
    making the first contact, when a reset, a close or a silent handshake means a TLS mismatch.
    """
    text = _first_line(exc)
    lowered = text.lower()
    if isinstance(exc, redis_exceptions.BusyLoadingError) or lowered.startswith("loading") \
            or ("loading" in lowered and "dataset" in lowered):
        return ("Redis at %s is loading its dataset into memory (LOADING) and answers no commands yet; "
                "nothing was changed. Retry when it has loaded: re-running is safe." % target)
    if connect_tls is True and ("wrong version number" in lowered or "timeout connecting" in lowered
                                or "unexpected eof" in lowered or "record layer failure" in lowered):
        return ("No TLS answer from Redis at %s (%s): with tls=true this is a plain (non-TLS) port, or "
                "nothing answers there. Set tls=false for a plain port, or check host/port and firewalls."
                % (target, text))
    if connect_tls is False and ("connection reset" in lowered or "closed by server" in lowered):
        return ("Redis at %s dropped the connection at once (%s): it probably expects TLS. Set tls=true "
                "(and ca_path), or check host/port." % (target, text))
    if "noauth" in lowered or "authentication required" in lowered \
            or "hello must be called with the client already authenticated" in lowered:
        return "Redis at %s requires a password (NOAUTH). Set password (and redis_username for an ACL user)." % target
    if isinstance(exc, redis_exceptions.AuthenticationError) or "wrongpass" in lowered \
            or "invalid username-password" in lowered or "invalid password" in lowered:
        return ("Authentication to Redis at %s failed (%s). Check redis_username/password "
                "(an ACL user needs both)." % (target, text))
    if "noperm" in lowered:
        return "The Redis user has no permission for this command at %s (%s). Grant it in the ACL." % (target, text)
    if "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
        return ("TLS to Redis at %s failed (%s). Check tls, ca_path, client_cert/client_key "
                "and validate_certs." % (target, text))
    if isinstance(exc, redis_exceptions.TimeoutError) or "timed out" in lowered or "timeout" in lowered:
        return ("Timed out talking to Redis at %s (%s). Check host/port and firewalls, "
                "or raise socket_timeout." % (target, text))
    if isinstance(exc, (redis_exceptions.MovedError, redis_exceptions.AskError)) \
            or "moved" in lowered or "cluster support disabled" in lowered:
        return "Redis at %s is a cluster: set mode=cluster (%s)." % (target, text)
    if connect_tls is None and ("connection reset" in lowered or "closed by server" in lowered
                                or "broken pipe" in lowered or "error while reading" in lowered):
        return ("The connection to Redis at %s was lost in the middle of the operation (%s). Re-run the task: "
                "it finds what is left to do." % (target, text))
    if "cluster" in lowered and ("down" in lowered or "cannot be connected" in lowered or "slot" in lowered):
        return ("Redis cluster via %s is not usable (%s): a node is down or unreachable; "
                "nothing was changed." % (target, text))
    if "refused" in lowered or "connecting to" in lowered or "name or service" in lowered \
            or isinstance(exc, redis_exceptions.ConnectionError):
        return ("Cannot connect to Redis at %s (%s). Check host/port, that Redis is running, "
                "and tls/mode settings." % (target, text))
    return "Redis at %s returned an error: %s" % (target, text)


@contextmanager
def translate_errors(target, connect_tls=None):
    """Turn any redis-py or socket failure into a one-line RedisOpsError (see describe_error)."""
    if not HAS_REDIS:
        raise RedisOpsError(MISSING_REDIS_MSG)
    try:
        yield
    except RedisOpsError:
        raise
    except redis_exceptions.RedisError as exc:
        raise RedisOpsError(describe_error(exc, target, connect_tls))
    except (OSError, ValueError) as exc:
        raise RedisOpsError(describe_error(exc, target, connect_tls))


def to_wire(text):
    """Bytes to send for a str that came from Redis (undecodable bytes round-trip)."""
    if isinstance(text, str):
        return text.encode("utf-8", ENCODING_ERRORS)
    return text


def printable(text):
    """A str safe for JSON output even when it carries undecodable bytes."""
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    return text.encode("utf-8", ENCODING_ERRORS).decode("utf-8", "backslashreplace")
