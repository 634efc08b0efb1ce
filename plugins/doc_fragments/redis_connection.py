# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  host:
    description:
      - Redis host name or address. Ignored when O(url) is set.
      - In O(mode=cluster), any one node of the cluster; the others are discovered.
    type: str
    default: localhost
  port:
    description:
      - Redis port. Ignored when O(url) is set.
    type: int
    default: 6379
  url:
    description:
      - A connection URL instead of O(host)/O(port), for example V(redis://user:pass@10.0.0.5:6379/0),
        V(rediss://10.0.0.5:6380/0) (TLS) or V(unix:///run/redis/redis.sock?db=0).
      - Never shown (C(no_log)), and the password inside it is masked on its own too, so a message
        built from the parsed URL cannot show it either.
    type: str
  redis_username:
    description:
      - ACL user name (Redis 6+). Leave unset to authenticate as the default user with O(password) only.
      - Named C(redis_username) in every module of the collection because C(username) means the
        gateway's user (for example the account M(apigw.ops.gateway_lockout) unlocks).
    type: str
  password:
    description:
      - Password of the default user, or of O(redis_username). Never shown (C(no_log)).
      - In O(mode=sentinel) also sent to the sentinels (asked again without it when every sentinel
        refuses it, as sentinels without C(requirepass) do).
    type: str
  db:
    description:
      - Database number (standalone and Sentinel only; a cluster has only database 0).
    type: int
    default: 0
  tls:
    description:
      - Connect with TLS.
    type: bool
    default: false
  validate_certs:
    description:
      - Verify the server certificate and host name when O(tls=true).
      - Set to V(false) only for testing.
    type: bool
    default: true
  ca_path:
    description:
      - CA certificate file (PEM) to verify the server with, when O(tls=true).
    type: path
  client_cert:
    description:
      - Client certificate file (PEM) for mutual TLS.
    type: path
  client_key:
    description:
      - Private key file (PEM) of O(client_cert).
    type: path
  mode:
    description:
      - How Redis is deployed.
      - V(cluster) scans and writes on every primary of a Redis Cluster.
      - V(sentinel) asks O(sentinel_hosts) for the current primary of O(sentinel_master).
    type: str
    choices: [standalone, cluster, sentinel]
    default: standalone
  sentinel_hosts:
    description:
      - Sentinel addresses as V(host:port), used with O(mode=sentinel).
    type: list
    elements: str
  sentinel_master:
    description:
      - Name of the monitored primary, used with O(mode=sentinel).
    type: str
    default: mymaster
  socket_timeout:
    description:
      - Seconds to wait for a connection or a reply before failing. A timeout is not retried, so
        an unreachable server (or a plain port with O(tls=true)) fails after one O(socket_timeout).
    type: float
    default: 10.0
requirements:
  - redis (Python library, 4.6 or newer; C(redis[hiredis]) recommended)
notes:
  - All modules of this collection are in the action group C(apigw.ops.gateway), so
    C(module_defaults) with C(group/apigw.ops.gateway) sets the connection once for a play.
  - Unreachable servers, wrong passwords, TLS failures (either way round), a server still loading
    its data and an unhealthy cluster fail the task with a one-line message before anything is
    changed. A connection lost in the middle of a delete says how many keys were already deleted;
    re-running the task deletes what is left.
"""
