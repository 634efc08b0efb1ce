# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's Redis keyspace: one definition of every key template.

A template is a string with ``{field}`` placeholders, e.g. ``lockout:{username}:{ip}``.
From it we build exact keys, SCAN MATCH patterns in which user values are always
glob-escaped (``al*ce`` matches only the literal ``al*ce``), and parsers that read
the field values back out of a key.  Templates are overridable through the
``keyspace`` option of every module (documented in the ``apigw.ops.keyspace`` fragment).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
import string

DEFAULT_KEYSPACE = {
    "ratelimit_global": "ratelimit:global:{ip}",
    "ratelimit_user": "ratelimit:user:{user_id}",
    "ratelimit_auth": "ratelimit:auth:{ip}",
    "loginfail": "loginfail:{username}:{ip}",
    "lockout": "lockout:{username}:{ip}",
    "token_blacklist": "token:blacklist:{jti}",
    "token_user": "token:user:{user_id}",
    "maintenance": "gateway:maintenance",
}

RATELIMIT_PREFIX = "ratelimit_"
GLOB_SPECIALS = "\\*?[]"
# The key contract for values that contain the separator (docs/gateway-contract.md): a field value
# holds no ':' unless it is an IP address in a field named ip (IPv6), or the template's last field
# (user_id, jti: matched exactly, never by prefix).  Usernames with ':' are refused, as the reference
# gateway refuses them; a key whose fields cannot be read back this way belongs to nobody.
KEY_SEPARATOR = ":"
IP_FIELDS = ("ip",)


class KeyspaceError(ValueError):
    """Bad template or bad value; the message is one line for fail_json."""


def keyspace_argument_spec():
    return dict(keyspace=dict(type="dict", default={}, no_log=False))


def glob_escape(value):
    """Escape a literal for a Redis glob (SCAN MATCH / KEYS)."""
    return "".join("\\" + ch if ch in GLOB_SPECIALS else ch for ch in value)


def canonical_ip(value):
    """The gateway's form of a client IP, or None if ``value`` is not one.

    IPv6 compressed and lower case (RFC 5952, what Python's ipaddress prints), IPv4 dotted quad;
    an IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, how a dual-stack listener shows an IPv4
    client) is that IPv4 address, so one client has one counter whichever socket it came in on.
    """
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def field_value_fits(field, value, last=False):
    """Whether a value read back from a key can be a value of ``field`` under the key contract."""
    if field in IP_FIELDS:
        return canonical_ip(value) is not None or KEY_SEPARATOR not in value
    return last or KEY_SEPARATOR not in value


def _fields(template):
    return [name for _text, name, _spec, _conv in string.Formatter().parse(template) if name]


class Keyspace:
    def __init__(self, overrides=None):
        templates = dict(DEFAULT_KEYSPACE)
        for name, template in (overrides or {}).items():
            if not isinstance(template, str) or not template:
                raise KeyspaceError("keyspace.%s must be a non-empty string template." % name)
            templates[name] = template
        for name, template in templates.items():
            try:
                fields = _fields(template)
            except ValueError as exc:
                raise KeyspaceError("keyspace.%s (%r) is not a valid template: %s." % (name, template, exc))
            if len(fields) != len(set(fields)):
                raise KeyspaceError("keyspace.%s (%r) repeats a field." % (name, template))
        self.templates = templates
        self._parsers = {}

    def template(self, name):
        try:
            return self.templates[name]
        except KeyError:
            raise KeyspaceError("Unknown keyspace entry %r (known: %s)." % (name, ", ".join(sorted(self.templates))))

    def fields(self, name):
        return _fields(self.template(name))

    def key(self, name, **values):
        """The exact key; every field must be given and non-empty."""
        missing = [f for f in self.fields(name) if values.get(f) in (None, "")]
        if missing:
            raise KeyspaceError("%s needs a value for %s." % (name, ", ".join(missing)))
        return self.template(name).format(**dict((k, str(v)) for k, v in values.items()))

    def pattern(self, name, **values):
        """A SCAN MATCH pattern: given fields are escaped literals, missing ones are ``*``.

        The template's own text is escaped too, so a template with glob characters
        still matches only its literal prefix.
        """
        template = self.template(name)
        out = []
        for text, field, _spec, _conv in string.Formatter().parse(template):
            out.append(glob_escape(text))
            if field:
                value = values.get(field)
                out.append("*" if value in (None, "") else glob_escape(str(value)))
        return "".join(out)

    def parser(self, name):
        """A compiled regex with one named group per field: a field other than the last ends
        at the first occurrence of the text that follows it (``lockout:{username}:{ip}`` reads
        ``lockout:al:ice:10.0.0.1`` as al + ``ice:10.0.0.1``, which parse() then rejects), except an
        ip field, which may hold the separator (IPv6); the last field takes the rest."""
        if name not in self._parsers:
            template = self.template(name)
            parts = list(string.Formatter().parse(template))
            regex = []
            for index, (text, field, _spec, _conv) in enumerate(parts):
                regex.append(re.escape(text))
                if field:
                    following = "".join(p[0] for p in parts[index + 1:index + 2])
                    if not following:
                        group = ".+"
                    elif field in IP_FIELDS:
                        group = ".+?"
                    else:
                        group = "(?:(?!%s).)+" % re.escape(following)
                    regex.append("(?P<%s>%s)" % (field, group))
            self._parsers[name] = re.compile("^" + "".join(regex) + "$", re.DOTALL)
        return self._parsers[name]

    def parse(self, name, key):
        """Field values of a key built from this template, or None if it does not fit the
        template and the key contract (see field_value_fits)."""
        match = self.parser(name).match(key)
        if not match:
            return None
        fields = match.groupdict()
        last = (self.fields(name) or [None])[-1]
        if not all(field_value_fits(field, value, field == last) for field, value in fields.items()):
            return None
        return fields

    def ratelimit_scopes(self):
        """Rate-limit buckets: every entry named ratelimit_<scope>."""
        return sorted(n[len(RATELIMIT_PREFIX):] for n in self.templates if n.startswith(RATELIMIT_PREFIX))


def keyspace_from_module(module):
    try:
        return Keyspace(module.params.get("keyspace"))
    except KeyspaceError as exc:
        module.fail_json(msg=str(exc))
