# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""redis_conf.mask_config: every line of a redis.conf that can hold a secret is masked."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from ansible_collections.apigw.ops.plugins.module_utils import redis_conf

# (config line, secret fragments that must not survive, fragments that must)
LINES = [
    ("requirepass s3cret-requirepass", ["s3cret-requirepass"], ["requirepass ********"]),
    ('requirepass "quoted secret"', ["quoted secret", "quoted"], ["requirepass"]),
    ("masterauth s3cret-masterauth", ["s3cret-masterauth"], ["masterauth"]),
    ("masteruser replication-user", ["replication-user"], ["masteruser"]),
    ("primaryauth s3cret-primary", ["s3cret-primary"], []),
    ("tls-key-file-pass s3cret-keypass", ["s3cret-keypass"], []),
    ("tls-client-key-file-pass s3cret-clientkeypass", ["s3cret-clientkeypass"], []),
    ("user alice on >s3cret-alice ~* &* +@all", ["s3cret-alice"], ["user alice on", "~* &* +@all"]),
    ("user bob on #" + "a" * 64 + " ~* +@all", ["a" * 64], ["user bob on"]),
    ("user carol on <s3cret-removed !" + "b" * 64 + " >s3cret-carol", ["s3cret-removed", "b" * 64, "s3cret-carol"],
     []),
    ('user dave on ">s3cret with space" ~*', ["s3cret with space", "space"], ["user dave"]),
    ("sentinel auth-pass apigw s3cret-sentinel", ["s3cret-sentinel"], ["sentinel auth-pass apigw"]),
    ("sentinel sentinel-pass s3cret-peers", ["s3cret-peers"], []),
    ("# requirepass s3cret-commented-out", ["s3cret-commented-out"], ["# requirepass"]),
    ("  REQUIREPASS s3cret-upper", ["s3cret-upper"], []),
    ("appendonly yes", [], ["appendonly yes"]),
]


def test_each_secret_kind_is_masked():
    for line, secrets, kept in LINES:
        masked = redis_conf.mask_line(line)
        for secret in secrets:
            assert secret not in masked, (line, masked)
        for fragment in kept:
            assert fragment in masked, (line, masked)


def test_password_option_value_masked_anywhere():
    text = "port 6379\nrename-command CONFIG hunter2-config\nappendonly no\n"
    masked = redis_conf.mask_config(text, secrets=["hunter2-config", None, ""])
    assert "hunter2" not in masked and masked.startswith("port 6379\n") and masked.endswith("appendonly no\n")


def test_whole_config_keeps_its_shape():
    text = "\n".join(line for line, _s, _k in LINES) + "\n"
    masked = redis_conf.mask_config(text)
    assert masked.count("\n") == text.count("\n")
    for _line, secrets, _kept in LINES:
        for secret in secrets:
            assert secret not in masked
