# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Atomic, permission-safe file writes shared by apigw.ops modules.

Private to the collection. Only the standard library is used, so any module
(jwt_keypair, jwt_keyset, redis_backup, ...) can import it.

The write protocol of :func:`write_atomic`:

1. a temporary file is created *in the destination directory* with
   ``mkstemp`` (mode 0600 from the start);
2. its final mode and owner/group are set with ``fchmod``/``fchown``
   **before any byte is written**, so a key is never readable by others, not
   even for an instant;
3. the data is written and ``fsync``-ed;
4. if ``backup`` is requested the previous file is hard-linked (or copied) to
   ``<path>.<pid>.<YYYY-MM-DD@HH:MM:SS>~``;
5. the temporary file is renamed over the destination (atomic on POSIX) and
   the directory is ``fsync``-ed.

Any failure removes the temporary file and raises :class:`AtomicFileError`
with a one-line message; the previous file is untouched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import errno
import grp
import os
import pwd
import shutil
import stat
import tempfile
import time


class AtomicFileError(Exception):
    """A file operation failed; ``str(exc)`` is a one-line message."""


def _reason(exc):
    """Short reason of an OSError without the traceback noise."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def parse_mode(mode, default=None):
    """Return an int file mode from an octal string (``'0600'``) or an int.

    YAML reads an unquoted ``0600`` as the int 384, which is the same mode.
    Symbolic modes (``u=rw``) are not supported.
    """
    if mode is None:
        return default
    if isinstance(mode, int):
        value = mode
    else:
        text = str(mode).strip()
        try:
            value = int(text, 8)
        except ValueError:
            raise AtomicFileError(
                "Invalid file mode %r: give an octal string such as '0600'." % (mode,))
    if value < 0 or value > 0o7777:
        raise AtomicFileError("Invalid file mode %r: out of range 0000-7777." % (mode,))
    return value


def resolve_owner(owner):
    """User name or uid -> uid (-1 when ``owner`` is None)."""
    if owner is None or owner == '':
        return -1
    try:
        return int(owner)
    except (TypeError, ValueError):
        pass
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise AtomicFileError("Unknown user %r for owner: create it first or give a uid." % (owner,))


def resolve_group(group):
    """Group name or gid -> gid (-1 when ``group`` is None)."""
    if group is None or group == '':
        return -1
    try:
        return int(group)
    except (TypeError, ValueError):
        pass
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise AtomicFileError("Unknown group %r: create it first or give a gid." % (group,))


def read_bytes(path):
    """Content of ``path`` or None if it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise AtomicFileError("Cannot read %s: %s." % (path, _reason(exc)))


def attributes_differ(path, mode=None, uid=-1, gid=-1):
    """List of the attributes of an existing file that differ ('mode', 'owner', 'group')."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise AtomicFileError("Cannot stat %s: %s." % (path, _reason(exc)))
    differ = []
    if mode is not None and stat.S_IMODE(info.st_mode) != mode:
        differ.append('mode')
    if uid not in (-1, info.st_uid):
        differ.append('owner')
    if gid not in (-1, info.st_gid):
        differ.append('group')
    return differ


def file_mode(path):
    """Permission bits of ``path`` as a '0644' string, or None if missing."""
    try:
        return '%04o' % stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def set_attributes(path, mode=None, uid=-1, gid=-1):
    """chown/chmod an existing file (owner first, so a mode with setgid bits survives)."""
    try:
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)
        if mode is not None:
            os.chmod(path, mode)
    except OSError as exc:
        raise AtomicFileError("Cannot set mode/owner of %s: %s." % (path, _reason(exc)))


def check_writable_dir(path):
    """Raise AtomicFileError unless the directory of ``path`` exists and is writable."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise AtomicFileError(
            "Directory %s does not exist (or is not a directory): create it first." % directory)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise AtomicFileError(
            "Directory %s is not writable by this user (permissions, read-only mount or immutable flag): "
            "fix it or use become." % directory)


def backup_name(path):
    """Name of a backup file, the same convention as AnsibleModule.backup_local()."""
    return '%s.%s.%s~' % (path, os.getpid(), time.strftime('%Y-%m-%d@%H:%M:%S', time.localtime()))


def backup_file(path):
    """Keep a copy of ``path`` (hard link when possible); returns its name or None if absent."""
    if not os.path.lexists(path):
        return None
    dest = backup_name(path)
    try:
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)
    except (OSError, IOError) as exc:
        raise AtomicFileError("Cannot back up %s to %s: %s." % (path, dest, _reason(exc)))
    return dest


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path, data, mode=0o600, uid=-1, gid=-1, backup=False):
    """Replace ``path`` with ``data`` (bytes) atomically; returns the backup file name or None.

    The temporary file lives in the same directory (so ``rename`` is atomic),
    gets ``mode``/``uid``/``gid`` before any data is written, and is removed if
    anything fails. The previous file is left untouched on failure.
    """
    if not isinstance(data, bytes):
        data = data.encode('utf-8')
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    tmp_path = None
    try:
        fd, tmp_path = tempfile.mkstemp(prefix='.%s.' % base, suffix='.tmp', dir=directory)
    except OSError as exc:
        raise AtomicFileError("Cannot write %s: %s." % (path, _reason(exc)))
    backup_path = None
    try:
        try:
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if backup:
            backup_path = backup_file(path)
        os.rename(tmp_path, path)
        tmp_path = None
        _fsync_dir(directory)
    except (OSError, IOError) as exc:
        raise AtomicFileError("Cannot write %s: %s; the previous file is unchanged." % (path, _reason(exc)))
    finally:
        if tmp_path is not None:
            try:
                os.unlink(tmp_path)
            except OSError:
                pass
    return backup_path


def remove_file(path, backup=False):
    """Remove ``path`` if it exists; returns the backup file name or None."""
    if not os.path.lexists(path):
        return None
    backup_path = backup_file(path) if backup else None
    try:
        os.unlink(path)
    except OSError as exc:
        raise AtomicFileError("Cannot remove %s: %s." % (path, _reason(exc)))
    _fsync_dir(os.path.dirname(os.path.abspath(path)))
    return backup_path
