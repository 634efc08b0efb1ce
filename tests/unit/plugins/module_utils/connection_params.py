# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module options for the connection layer in unit tests: every default, a short socket timeout, overrides."""

from __future__ import annotations

from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import redis_connection_argument_spec
from ansible_collections.apigw.ops.tests.harness.redis_servers import free_port as closed_port  # nothing listens

__all__ = ["closed_port", "params"]


def params(**overrides):
    spec = redis_connection_argument_spec()
    values = {name: opt.get("default") for name, opt in spec.items()}
    values["socket_timeout"] = 1.0
    values.update(overrides)
    return values
