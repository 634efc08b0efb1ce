# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  keyspace:
    description:
      - Key templates of the gateway, overriding the defaults entry by entry.
        A template is a string with C({field}) placeholders.
      - "Defaults (the gateway contract): C(ratelimit_global: ratelimit:global:{ip}),
        C(ratelimit_user: ratelimit:user:{user_id}), C(ratelimit_auth: ratelimit:auth:{ip}),
        C(loginfail: loginfail:{username}:{ip}), C(lockout: lockout:{username}:{ip}),
        C(token_blacklist: token:blacklist:{jti}), C(token_user: token:user:{user_id}),
        C(maintenance: gateway:maintenance)."
      - Every entry named C(ratelimit_<scope>) is a rate-limit scope; adding one adds a scope.
      - Values given by the user (user names, IPs, ids) are glob-escaped before they go into a
        SCAN pattern, so C(al*ce) matches only the literal name C(al*ce), never C(alice).
      - "The separator C(:) is unambiguous: a user name with C(:) is refused (the reference gateway
        refuses it too), a field other than the last never holds C(:) unless it is an IP, and the
        last field (user id, jti) is only matched as a whole key. See docs/gateway-contract.md."
      - IPs are put in the gateway's canonical form before they go into a key - IPv6 compressed and
        lower case, an IPv4-mapped IPv6 address as its IPv4 address - so V(2001:DB8:0::1) means
        C(2001:db8::1) and V(::ffff:192.0.2.1) means C(192.0.2.1).
    type: dict
    default: {}
"""
