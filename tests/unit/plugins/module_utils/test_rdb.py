# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rdb: CRC64-Jones vectors, header parsing, verification of real and damaged RDB files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import random
import struct

import pytest

from ansible_collections.apigw.ops.plugins.module_utils import rdb
from ansible_collections.apigw.ops.tests.harness import redis_servers


def test_crc64_check_value_both_backends():
    # the check value of crc64.c in the Redis source ("e9c6d914c4b8d9ca")
    assert rdb.crc64_python(b"123456789") == 0xE9C6D914C4B8D9CA
    assert rdb.crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    assert rdb.crc64(b"") == 0


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 63, 1000, 4099])
def test_python_backend_equals_bitwise_reference(size):
    data = bytes(random.Random(size).getrandbits(8) for _index in range(size))
    crc = 0
    for byte in data:  # the bit-by-bit definition
        crc ^= byte
        for _bit in range(8):
            crc = (crc >> 1) ^ 0x95AC9329AC4BC9B5 if crc & 1 else crc >> 1
    assert rdb.crc64_python(data) == crc == rdb.crc64(data)
    # continuation: crc(a + b) == crc(b, crc(a))
    assert rdb.crc64_python(data[size // 2:], rdb.crc64_python(data[:size // 2])) == crc


def _dump(server):
    server.cli("SAVE")
    with open(os.path.join(server.dir, "dump.rdb"), "rb") as handle:
        return handle.read()


def test_verify_real_dump(redis_standalone):
    server = redis_standalone.primary
    for i in range(100):
        server.cli("SET", "ratelimit:global:10.0.0.%d" % i, str(i), "EX", "600")
    server.cli("HSET", "token:user:1", "jti", "1736937000")
    data = _dump(server)
    header = rdb.parse_header(data[:512])
    assert header["version"] == 10 and header["aux"]["redis-ver"].startswith("7.")
    result = rdb.verify(data)
    assert result["ok"] and result["reason"] is None and result["keys_in_file"] == 101
    assert result["checks"] == {"magic": "ok", "crc64": "ok", "redis_check_rdb": "ok"}
    assert result["crc64"] == "%016x" % struct.unpack("<Q", data[-8:])[0]
    never = rdb.verify(data, check_rdb="never")
    assert never["ok"] and never["checks"]["redis_check_rdb"] == "skipped: check_rdb=never"


@pytest.mark.parametrize("damage, reason", [
    (lambda d: d[:len(d) // 2], "truncated"),
    (lambda d: d[:-1], "truncated"),
    (lambda d: d[:40] + bytes([d[40] ^ 0x01]) + d[41:], "CRC64 mismatch"),
    (lambda d: b"RADIS" + d[5:], "bad magic"),
    (lambda d: b"REDIS0099" + d[9:], "unsupported RDB version 99"),
    (lambda d: b"", "bad magic"),
])
def test_damaged_files_fail(redis_standalone, damage, reason):
    server = redis_standalone.primary
    for i in range(50):
        server.cli("SET", "k%d" % i, "v" * 50)
    result = rdb.verify(damage(_dump(server)))
    assert not result["ok"] and reason in result["reason"], result["reason"]
    assert "failed" in result["checks"].values()


def test_check_rdb_always_without_the_tool(redis_standalone):
    data = _dump(redis_standalone.primary)
    result = rdb.verify(data, check_rdb="always", check_rdb_path="/nonexistent/redis-check-rdb")
    assert not result["ok"] and "not installed" in result["reason"]
    auto = rdb.verify(data, check_rdb="auto", check_rdb_path="/nonexistent/redis-check-rdb")
    assert auto["ok"] and auto["checks"]["redis_check_rdb"].startswith("skipped")


def test_checksum_disabled_is_reported_not_failed():
    server = redis_servers.RedisServer(extra_config={"rdbchecksum": "no"}).start()
    try:
        server.cli("SET", "a", "1")
        result = rdb.verify(_dump(server))
    finally:
        server.stop()
    assert result["ok"] and result["checks"]["crc64"] == "skipped: written with rdbchecksum no"


@pytest.mark.parametrize("check_rdb, backend", [("always", "redis-check-rdb"), ("never", rdb.CRC64_BACKEND)])
def test_crc_checked_by_one_backend_read_once(redis_standalone, tmp_path, check_rdb, backend):
    """redis-check-rdb is the CRC verifier when it runs; otherwise the in-process backend. Both catch a flipped
    bit inside a value (the structure stays parseable) and verify_file reads the file once, in chunks."""
    server = redis_standalone.primary
    server.cli("SET", "bitflip", "v" * 200)
    server.cli("CONFIG", "SET", "rdbcompression", "no")  # the value stays literal in the file
    try:
        data = _dump(server)
    finally:
        server.cli("CONFIG", "SET", "rdbcompression", "yes")
    good = tmp_path / "good.rdb"
    good.write_bytes(data)
    result = rdb.verify_file(str(good), check_rdb=check_rdb)
    assert result["ok"] and result["crc64_backend"] == backend and result["checks"]["crc64"] == "ok"
    at = data.index(b"v" * 200) + 100
    bad = tmp_path / "bad.rdb"
    bad.write_bytes(data[:at] + b"w" + data[at + 1:])
    result = rdb.verify_file(str(bad), check_rdb=check_rdb)
    assert not result["ok"] and "CRC64 mismatch" in result["reason"] and result["checks"]["crc64"] == "failed"
    missing = rdb.verify_file(str(tmp_path / "missing.rdb"), check_rdb=check_rdb)
    assert not missing["ok"] and "cannot read" in missing["reason"]
