# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""redis.conf: reading its directives, the restore's AOF override, and masking its secrets.

Any text of a redis.conf that leaves the module (a diff, a message) goes through ``mask_config``:
every directive that can hold a secret - whatever the module's own password option is - shows
``********`` instead of its value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re

from ansible_collections.apigw.ops.plugins.module_utils import atomic_file
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import RedisOpsError

AOF_MARKER = "# apigw.ops redis_backup: AOF disabled so Redis loads the restored dump; " \
             "re-enable with state=aof_enabled after start"
MASK = "********"
# directives whose whole value is a secret (or names the account a secret belongs to)
SECRET_DIRECTIVES = frozenset(("requirepass", "masterauth", "masteruser", "primaryauth", "primaryuser",
                               "tls-key-file-pass", "tls-client-key-file-pass"))
# "sentinel auth-pass <master> <secret>" and "sentinel sentinel-pass <secret>"
SENTINEL_MASTER_SECRETS = frozenset(("auth-pass", "auth-user"))
SENTINEL_SECRETS = frozenset(("sentinel-pass", "sentinel-user"))
_DIRECTIVE = re.compile(r"^(\s*#?\s*)(\S+)(.*)$")


def _mask_acl_rules(rest):
    """``user <name> <rules>``: >pw, <pw, #hash, !hash are secrets; quoted rules are masked whole."""
    fields = rest.split()
    if not fields:
        return rest
    if '"' in rest or "'" in rest:
        return " %s %s" % (fields[0], MASK)
    rules = [MASK if rule[:1] in (">", "<", "#", "!") else rule for rule in fields[1:]]
    return " " + " ".join([fields[0]] + rules)


def mask_line(line, secrets=()):
    """``line`` of a redis.conf with every secret it can hold replaced by ********.

    Commented-out directives are masked too (``# requirepass old-password`` is still a password).
    ``secrets``: values that must not appear anywhere (the module's password options)."""
    match = _DIRECTIVE.match(line)
    if match:
        lead, key, rest = match.groups()
        name = key.lower()
        if name in SECRET_DIRECTIVES and rest.strip():
            line = "%s%s %s" % (lead, key, MASK)
        elif name == "user":
            line = lead + key + _mask_acl_rules(rest)
        elif name == "sentinel":
            fields = rest.split()
            sub = fields[0].lower() if fields else ""
            if sub in SENTINEL_MASTER_SECRETS and len(fields) >= 2:
                line = "%s%s %s %s %s" % (lead, key, fields[0], fields[1], MASK)
            elif sub in SENTINEL_SECRETS:
                line = "%s%s %s %s" % (lead, key, fields[0], MASK)
    for secret in secrets:
        if secret and secret in line:
            line = line.replace(secret, MASK)
    return line


def _secret_values(text):
    """Passwords the config itself holds (directive values, ACL >password rules): masked wherever else they
    appear too (a rename-command, a comment).  Account names (masteruser ...) are masked in place only."""
    found = set()
    for line in text.split("\n"):
        match = _DIRECTIVE.match(line)
        if not match:
            continue
        key, fields = match.group(2).lower(), match.group(3).split()
        if key in SECRET_DIRECTIVES and not key.endswith("user") and fields:
            found.add(" ".join(fields).strip("\"'"))
        elif key == "user":
            found.update(rule[1:] for rule in fields[1:] if rule[:1] in (">", "<", "#", "!") and len(rule) > 1)
        elif key == "sentinel" and len(fields) >= 2 and fields[0].lower() in ("auth-pass", "sentinel-pass"):
            found.add(fields[-1])
    return found


def mask_config(text, secrets=()):
    """The text of a redis.conf with every secret masked (see ``mask_line``), and every password it or the
    module's options hold masked wherever it appears."""
    if text is None:
        return None
    values = set(s for s in secrets if isinstance(s, str) and s) | _secret_values(text)
    ordered = sorted(values, key=len, reverse=True)  # the longest first: one secret may contain another
    return "\n".join(mask_line(line, ordered) for line in text.split("\n"))


class RedisConfig:
    """The directives of a redis.conf (includes followed, the last occurrence wins)."""

    def __init__(self, path):
        self.path = path
        self.values = {}
        try:
            with open(path) as handle:
                self.text = handle.read()
        except (IOError, OSError) as exc:
            raise RedisOpsError("Cannot read the Redis config %s: %s." % (path, exc.strerror or exc))
        self._parse(self.text, os.path.dirname(os.path.abspath(path)), 0)

    def _parse(self, text, base, depth):
        for line in text.splitlines():
            fields = line.strip().split(None, 1)
            if not fields or fields[0].startswith("#"):
                continue
            key = fields[0].lower()
            value = fields[1].strip() if len(fields) > 1 else ""
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            if key == "include" and depth < 5:
                for included in sorted(glob.glob(os.path.join(base, value))):
                    try:
                        with open(included) as handle:
                            self._parse(handle.read(), base, depth + 1)
                    except (IOError, OSError):
                        pass
                continue
            self.values[key] = value

    def get(self, key, default=None):
        return self.values.get(key, default)

    @property
    def appendonly(self):
        return self.get("appendonly", "no").lower() == "yes"

    @property
    def aof_disabled_for_restore(self):
        return AOF_MARKER in self.text

    def directory(self):
        value = self.get("dir", ".")
        if not os.path.isabs(value):
            value = os.path.join(os.path.dirname(os.path.abspath(self.path)), value)
        return value

    def text_with_aof_disabled(self):
        return self.text.rstrip("\n") + "\n" + AOF_MARKER + "\nappendonly no\n"

    def text_with_aof_enabled(self):
        """The config without our restore override; 'appendonly yes' added if still needed."""
        lines = self.text.splitlines()
        out = []
        skip_next = False
        for line in lines:
            if line.strip() == AOF_MARKER:
                skip_next = True
                continue
            if skip_next and line.strip().lower().startswith("appendonly"):
                skip_next = False
                continue
            skip_next = False
            out.append(line)
        text = "\n".join(out) + "\n"
        probe = RedisConfig.__new__(RedisConfig)
        probe.path, probe.values, probe.text = self.path, {}, text
        probe._parse(text, os.path.dirname(os.path.abspath(self.path)), 0)  # pylint: disable=protected-access
        if not probe.appendonly:
            text += "appendonly yes\n"
        return text


def write_config(path, text):
    info = os.stat(path)
    atomic_file.write_atomic(path, text, mode=info.st_mode & 0o7777, uid=info.st_uid, gid=info.st_gid)
