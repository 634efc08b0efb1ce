"""The gateway tests' fixtures (real redis-server, mock upstream and gateway processes on free loopback ports)."""

from __future__ import annotations

from tests.gateway.conftest import gateway_factory, redis_server, upstream, workdir

__all__ = ["gateway_factory", "redis_server", "upstream", "workdir"]
