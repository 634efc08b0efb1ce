# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RDB files: header reader and verifier (magic/version, CRC64 trailer, redis-check-rdb).

Redis ends every RDB (version 5+, ``rdbchecksum yes``, the default) with the CRC64 of all
preceding bytes, little-endian.  The CRC is "CRC-64/Jones" as Redis implements it
(``src/crc64.c``): reflected polynomial 0xad93d23594c935a9, init 0, no final xor; the check
value of ``123456789`` is 0xe9c6d914c4b8d9ca.

Who checks the CRC, fastest first (the result's ``crc64_backend`` says which one did):

1. ``redis-check-rdb`` when it runs (``check_rdb`` auto/always and installed): Redis's own C code
   checks the CRC while it parses every key ("Checksum OK" / "RDB CRC error"), and it reports the
   key count.  It reads the bytes from a pipe as they arrive, so the file is read once and no CRC
   is computed in Python at all.
2. the C extension of ``crcmod`` (~170 MB/s).  crcmod ships no wheels: ``pip install crcmod``
   builds the extension only where a C compiler and the Python headers exist and otherwise
   installs silently without it - which is why a venv made by ``pip install redis crcmod`` on a
   host without gcc (the Redis host's venv of apigw.ops.redis) ran the pure-Python path.  The
   python3-crcmod OS package has it built.
3. the documented fallback: pure-Python slice-by-8 tables (~4-5 MB/s: about 13 s for a 68 MB RDB).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import hashlib
import os
import re
import shutil
import struct
import queue
import subprocess
import tempfile
import threading

try:
    import crcmod
    import crcmod._crcfunext  # pylint: disable=unused-import
    _CRCMOD = crcmod.mkCrcFun(0x1ad93d23594c935a9, initCrc=0, rev=True, xorOut=0)
    CRC64_BACKEND = "crcmod (C extension)"
except ImportError:
    _CRCMOD = None
    CRC64_BACKEND = "pure Python slice-by-8"
CHECK_RDB_BACKEND = "redis-check-rdb"

MAGIC = b"REDIS"
MIN_VERSION = 1
MAX_KNOWN_VERSION = 11      # Redis 7.2 writes 11, 7.0 writes 10; newer versions are refused
CHECKSUM_SINCE = 5          # RDB versions before 5 have no CRC64 trailer
OPCODE_EOF = 0xFF
OPCODE_AUX = 0xFA
CHUNK = 4 << 20

_POLY_REFLECTED = 0x95AC9329AC4BC9B5
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_TABLES = []  # filled once by _tables()


class RdbError(Exception):
    """A file is not a valid RDB; ``str(exc)`` is a short reason (e.g. 'CRC64 mismatch')."""


def _tables():
    if not _TABLES:
        first = []
        for byte in range(256):
            crc = byte
            for _bit in range(8):
                crc = (crc >> 1) ^ _POLY_REFLECTED if crc & 1 else crc >> 1
            first.append(crc)
        tables = [first]
        for _k in range(7):
            prev = tables[-1]
            tables.append([(prev[i] >> 8) ^ first[prev[i] & 0xFF] for i in range(256)])
        _TABLES.extend(tables)
    return _TABLES


def crc64_python(data, crc=0):
    """CRC-64/Jones of ``data`` (bytes-like) continuing from ``crc``, pure Python slice-by-8."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _tables()
    view = memoryview(data)
    words = len(view) // 8
    for word in struct.unpack_from("<%dQ" % words, view):
        c = crc ^ word
        crc = (t7[c & 255] ^ t6[(c >> 8) & 255] ^ t5[(c >> 16) & 255] ^ t4[(c >> 24) & 255]
               ^ t3[(c >> 32) & 255] ^ t2[(c >> 40) & 255] ^ t1[(c >> 48) & 255] ^ t0[c >> 56])
    for byte in bytes(view[words * 8:]):
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def crc64(data, crc=0):
    """CRC-64/Jones as Redis computes it, on the fastest backend available."""
    if _CRCMOD is not None:
        return _CRCMOD(bytes(data) if isinstance(data, memoryview) else data, crc)
    return crc64_python(data, crc)


def _length(data, pos):
    """RDB length encoding -> (value, special_encoding_or_None, new_pos)."""
    first = data[pos]
    kind = first >> 6
    if kind == 0:
        return first & 0x3F, None, pos + 1
    if kind == 1:
        return ((first & 0x3F) << 8) | data[pos + 1], None, pos + 2
    if first == 0x80:
        return struct.unpack_from(">I", data, pos + 1)[0], None, pos + 5
    if first == 0x81:
        return struct.unpack_from(">Q", data, pos + 1)[0], None, pos + 9
    if kind == 3:
        return None, first & 0x3F, pos + 1
    raise RdbError("bad length encoding 0x%02x at offset %d" % (first, pos))


def _string(data, pos):
    length, special, pos = _length(data, pos)
    if special is None:
        return bytes(data[pos:pos + length]).decode("utf-8", "replace"), pos + length
    if special == 0:
        return str(struct.unpack_from("<b", data, pos)[0]), pos + 1
    if special == 1:
        return str(struct.unpack_from("<h", data, pos)[0]), pos + 2
    if special == 2:
        return str(struct.unpack_from("<i", data, pos)[0]), pos + 4
    raise RdbError("compressed auxiliary field at offset %d" % pos)


def parse_header(data):
    """Magic, version and the leading AUX fields (redis-ver, ctime, ...) of an RDB.

    ``data`` needs only the first few hundred bytes.  Raises RdbError.
    """
    if len(data) < 9 or bytes(data[:5]) != MAGIC:
        raise RdbError("not an RDB file: bad magic")
    digits = bytes(data[5:9])
    if not digits.isdigit():
        raise RdbError("not an RDB file: bad version field %r" % digits)
    version = int(digits)
    if version < MIN_VERSION or version > MAX_KNOWN_VERSION:
        raise RdbError("unsupported RDB version %d (this reader knows 1-%d)" % (version, MAX_KNOWN_VERSION))
    aux = {}
    pos = 9
    try:
        while pos < len(data) and data[pos] == OPCODE_AUX:
            key, pos = _string(data, pos + 1)
            value, pos = _string(data, pos)
            aux[key] = value
    except (IndexError, struct.error):
        pass  # header cut short by the caller's prefix: what was read is enough
    return {"version": version, "aux": aux}


def check_rdb_command(path=None):
    """Path of redis-check-rdb (``path`` if given), or None when it is not installed."""
    if path:
        return path if os.access(path, os.X_OK) else None
    return shutil.which("redis-check-rdb") or next(
        (p for p in ("/usr/bin/redis-check-rdb", "/usr/local/bin/redis-check-rdb") if os.access(p, os.X_OK)), None)


def _check_rdb_reason(output):
    """The useful line of a redis-check-rdb failure report ('Invalid object type: 48 at offset 104')."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for index, line in enumerate(lines):
        if "RDB ERROR DETECTED" in line and index + 1 < len(lines):
            match = re.match(r"\[offset (\d+)\] (.*)", lines[index + 1])
            if match:
                return "%s at offset %s" % (match.group(2), match.group(1))
            return lines[index + 1]
    return lines[-1] if lines else "no output"


def _tool_crc_check(output, reasons):
    """The crc64 check as redis-check-rdb reported it (it compares the trailer with its own CRC)."""
    text = output[1] if output else ""
    if "Checksum OK" in text:
        return "ok"
    if "RDB CRC error" in text:
        reasons.append("CRC64 mismatch (redis-check-rdb: RDB CRC error)")
        return "failed"
    reasons.append("redis-check-rdb did not confirm the checksum")
    return "failed"


class StreamVerifier:
    """Verify an RDB while it arrives: ``feed()`` chunks as they are read from the socket or from
    the file the BGSAVE child is writing, then ``finish()``.  redis-check-rdb reads the same bytes
    from a pipe as they come, so verification overlaps the snapshot instead of following it.

    ``check_rdb``: 'auto' (run when installed), 'always' (a missing tool fails), 'never'.
    The bytes fed are kept (``data()``) so the caller can write the verified file.
    """

    def __init__(self, check_rdb="auto", check_rdb_path=None, keep_data=True):
        self.check_rdb = check_rdb
        self._keep = keep_data
        self._last9 = b""
        self.checks = {}
        self._chunks = []
        self._size = 0
        self._sha = hashlib.sha256()
        self._crc = 0
        self._tail = b""
        self._head = b""
        self._proc = None
        self._report = None
        self.crc_backend = CRC64_BACKEND
        if check_rdb == "never":
            self.checks["redis_check_rdb"] = "skipped: check_rdb=never"
            return
        command = check_rdb_command(check_rdb_path)
        if command is None:
            self.checks["redis_check_rdb"] = ("failed" if check_rdb == "always" else "skipped") + \
                ": redis-check-rdb is not installed"
            return
        self._report = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()/abort()
        self._proc = subprocess.Popen([command, "/dev/stdin"], stdin=subprocess.PIPE,
                                      stdout=self._report, stderr=subprocess.STDOUT)
        try:  # a 1 MiB pipe (Linux) lets it run ahead instead of in 64 KiB steps
            fcntl.fcntl(self._proc.stdin.fileno(), F_SETPIPE_SZ, 1 << 20)
        except (OSError, IOError):
            pass
        # the writer thread blocks in write(2) without the GIL while this thread computes the CRC
        self._queue = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop)
        self._writer.daemon = True
        self._writer.start()
        self.crc_backend = CHECK_RDB_BACKEND

    def _write_loop(self):
        stdin = self._proc.stdin
        broken = False
        while True:
            chunk = self._queue.get()
            if chunk is None:
                break
            if not broken:
                try:
                    stdin.write(chunk)
                except (OSError, ValueError):  # it stopped reading: the file is bad, its report says why
                    broken = True
        try:
            stdin.close()
        except (OSError, ValueError):
            pass

    def feed(self, chunk):
        if not chunk:
            return
        if self._keep:
            self._chunks.append(chunk)
        self._last9 = (self._last9 + chunk[-9:])[-9:]
        self._size += len(chunk)
        self._sha.update(chunk)
        if self._proc is not None:
            self._queue.put(chunk)
        if len(self._head) < 4096:
            self._head += chunk[:4096]
        if len(chunk) >= 8:
            if self.crc_backend != CHECK_RDB_BACKEND:
                self._crc = crc64(self._tail, self._crc)
                self._crc = crc64(memoryview(chunk)[:-8], self._crc)
            self._tail = chunk[-8:]
        else:
            joined = self._tail + chunk
            if self.crc_backend != CHECK_RDB_BACKEND:
                self._crc = crc64(joined[:-8], self._crc)
            self._tail = joined[-8:]

    def _close_pipe(self):
        self._queue.put(None)
        self._writer.join()

    def abort(self):
        if self._proc is not None:
            self._proc.kill()
            self._close_pipe()
            self._proc.wait()
            self._report.close()
            self._proc = None

    def data(self):
        if len(self._chunks) > 1:
            self._chunks = [b"".join(self._chunks)]
        return self._chunks[0] if self._chunks else b""

    def finish(self):
        """The verification result (a dict; see ``verify``)."""
        result = {"ok": False, "reason": None, "checks": self.checks, "rdb_version": None, "aux": {},
                  "size": self._size, "sha256": self._sha.hexdigest(), "crc64": None, "keys_in_file": None,
                  "crc64_backend": self.crc_backend}
        output = self._tool_output()
        checks, reasons = self.checks, []
        try:
            header = parse_header(self._head)
            result["rdb_version"], result["aux"] = header["version"], header["aux"]
            checks["magic"] = "ok"
        except RdbError as exc:
            checks["magic"] = "failed"
            reasons.append(str(exc))
            header = None
        if header:
            if header["version"] < CHECKSUM_SINCE:
                checks["crc64"] = "skipped: RDB version %d has no checksum" % header["version"]
                # the last 8 bytes are data in this version
            elif self._size < 18 or len(self._tail) < 8 or self._last_body_byte() != OPCODE_EOF:
                checks["crc64"] = "failed"
                reasons.append("truncated: no end-of-file marker before the checksum")
            else:
                stored = struct.unpack("<Q", self._tail)[0]
                result["crc64"] = "%016x" % stored
                if stored == 0:
                    checks["crc64"] = "skipped: written with rdbchecksum no"
                elif self.crc_backend == CHECK_RDB_BACKEND:
                    checks["crc64"] = _tool_crc_check(output, reasons)
                elif stored != self._crc:
                    checks["crc64"] = "failed"
                    reasons.append("CRC64 mismatch: file says %016x, content is %016x" % (stored, self._crc))
                else:
                    checks["crc64"] = "ok"
        if output is not None:
            code, output = output
            match = re.search(r"(\d+) keys read", output)
            if match:
                result["keys_in_file"] = int(match.group(1))
            if code == 0 and "RDB looks OK" in output:
                checks["redis_check_rdb"] = "ok"
            else:
                checks["redis_check_rdb"] = "failed"
                reasons.append("redis-check-rdb: %s" % _check_rdb_reason(output))
        elif self.check_rdb == "always":
            reasons.append("redis-check-rdb is not installed and check_rdb=always")
        result["ok"] = not reasons
        result["reason"] = "; ".join(reasons) if reasons else None
        return result

    def _tool_output(self):
        """(exit code, report) of redis-check-rdb once it has read everything, or None."""
        if self._proc is None:
            return None
        self._close_pipe()
        code = self._proc.wait()
        self._report.seek(0)
        output = self._report.read().decode("utf-8", "replace")
        self._report.close()
        self._proc = None
        return code, output

    def _last_body_byte(self):
        """The byte before the 8-byte checksum (must be the EOF opcode)."""
        return self._last9[0] if len(self._last9) == 9 else None


def verify(data, check_rdb="auto", check_rdb_path=None):
    """Verify an RDB held in memory; returns a dict, never raises for a bad file.

    Keys: ``ok`` (bool), ``reason`` (short text when not ok), ``checks`` (check name ->
    'ok' / 'failed' / 'skipped: why'), ``rdb_version``, ``aux``, ``size``, ``sha256``,
    ``crc64`` (hex of the trailer), ``keys_in_file`` (from redis-check-rdb, or None).
    """
    verifier = StreamVerifier(check_rdb, check_rdb_path, keep_data=False)
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        verifier.feed(bytes(view[start:start + CHUNK]))
    return verifier.finish()


def verify_file(path, check_rdb="auto", check_rdb_path=None):
    """``verify`` of a file, read once in chunks (memory stays at one chunk)."""
    verifier = StreamVerifier(check_rdb, check_rdb_path, keep_data=False)
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                verifier.feed(chunk)
    except (IOError, OSError) as exc:
        verifier.abort()
        result = verifier.finish()
        result.update(ok=False, reason="cannot read %s: %s" % (path, exc.strerror or exc))
        return result
    return verifier.finish()


def read_file(path):
    """Whole content of an RDB file; raises RdbError with a short reason."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise RdbError("cannot read %s: %s" % (path, exc.strerror or exc))
