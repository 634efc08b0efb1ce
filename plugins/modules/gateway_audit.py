#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
module: gateway_audit
short_description: Search the gateway's audit log and request log - events, counts per type, top IPs and usernames
version_added: 0.1.0
description:
  - Reads the gateway's audit log (JSON lines with C(timestamp), C(eventType), C(username), C(ip), C(requestId)) and
    optionally its JSON request log, filters the events, and returns the newest matches, the number of matches
    per event type and the O(top) IPs / usernames by count.
  - Replaces the runbook's C(jq) pipelines, for example
    C(jq -r 'select(.eventType=="LOGIN_FAILURE") | .ip' logs/audit-logs.json | sort | uniq -c | sort -rn | head -10)
    ("Brute Force Attack", "Identify attacking IPs") is O(event_type=LOGIN_FAILURE) with the C(ip) list of RV(top), and
    C(jq 'select(.eventType=="LOGIN_FAILURE")' logs/audit-logs.json | tail -20) is RV(events) with O(limit=20).
  - Files are streamed line by line, so a log of many gigabytes is never held in memory; rotated files
    (C(audit-logs.json.1), C(audit-logs.json.2.gz), C(audit-logs.json-20260115.gz)) are read too with
    O(include_rotated), decompressing C(.gz), C(.bz2) and C(.xz) on the fly.
  - A line that is not a JSON object, not UTF-8, has no C(eventType) (audit log), has no valid C(timestamp) when
    O(since) or O(until) is given, or is longer than 1 MiB is skipped and counted in RV(malformed); the run goes on.
  - Before a line is parsed, its bytes are screened for the literal values of O(event_type), O(username) and
    O(request_id) (like a C(grep) before C(jq)); lines containing a backslash are always parsed. The screen only
    skips lines that cannot match, so results are exact; a line it skips is counted in RV(malformed) only when
    it does not look like a JSON object (C({...})).
  - Nothing is ever written; it needs no Redis connection, so it is not in the C(gateway) action group.
author:
  - apigw.ops maintainers (@apigw-ops)
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
  idempotent:
    support: full
    description: Never changes anything (C(changed) is always V(false)).
options:
  path:
    description:
      - The audit log (the gateway's C(AUDIT_LOG_FILE)). The contract's default, C(logs/audit-logs.json), is relative
        to the gateway's working directory; relative paths here are relative to the module's working directory,
        so give an absolute path on real hosts (the C(apigw.ops.gateway) role writes it to
        C(<gateway_log_dir>/audit-logs.json)).
      - A missing, unreadable or directory O(path) fails the task.
    type: path
    default: logs/audit-logs.json
  audit:
    description:
      - Read the audit log O(path). Set to V(false) to read only O(request_log).
    type: bool
    default: true
  request_log:
    description:
      - The gateway's JSON request log files (its stdout, for example C(<gateway_log_dir>/gateway-3000.log)), read
        after the audit log.
      - Each C("msg":"Incoming request") line becomes an event of type V(REQUEST) (with C(ip), C(requestId),
        C(method), C(path), C(status), C(duration)); each line of level C(error) or worse (or a numeric level of 50
        or more) an event of type V(ERROR). Other lines are ignored. C(timestamp) is set from C(time) (epoch
        milliseconds) when the line has none.
    type: list
    elements: path
  include_rotated:
    description:
      - Also read the rotated files of O(path) and of each O(request_log) - siblings named C(<file>.<N>...) or
        C(<file>-<digits>...), optionally compressed - oldest first by modification time, the live file last.
    type: bool
    default: false
  event_type:
    description:
      - Only events of these types (C(eventType)), for example V(LOGIN_FAILURE), V(LOGIN_SUCCESS),
        V(ACCOUNT_LOCKED), V(TOKEN_REFRESH), V(TOKEN_REVOKED), V(RATE_LIMIT_EXCEEDED), V(LOGOUT), and V(REQUEST) or
        V(ERROR) for the request log. Case-insensitive; other types a gateway writes work too.
    type: list
    elements: str
  username:
    description:
      - Only events of these usernames, compared literally and exactly (V(al*ce) matches only C(al*ce)).
    type: list
    elements: str
  username_regex:
    description:
      - Only events whose C(username) contains a match of this Python regular expression (C(re.search)); use C(^)
        and C($) to anchor it. An invalid expression fails the task.
    type: str
  ip:
    description:
      - Only events from these client IPs or networks (V(192.168.1.100), V(192.168.1.0/24), V(2001:db8::/32)).
        An IPv4-mapped IPv6 address in the log (C(::ffff:10.0.0.1)) matches its IPv4 address.
    type: list
    elements: str
  request_id:
    description:
      - Only events with these C(requestId) values (the runbook's C(grep "requestId.*abc123"), exactly).
    type: list
    elements: str
  status:
    description:
      - Only events with one of these HTTP statuses, V(429), or classes, V(5xx). Audit events have no status, so
        with O(status) only request-log events can match.
    type: list
    elements: str
  line_regex:
    description:
      - Only lines in which this Python regular expression finds a match, searched in the raw JSON line before it is
        parsed (the runbook's C(grep -i "error\|exception") is V((?i\)error|exception)). An invalid expression
        fails the task.
    type: str
  since:
    description:
      - Only events at or after this time. ISO 8601 (V(2026-01-15T10:00:00Z), V(2026-01-15T11:00:00+01:00),
        V(2026-01-15); no offset means UTC) or a duration before now (V(30s), V(15m), V(1h), V(2d), V(1w)).
      - With O(since) or O(until), an event without a valid C(timestamp) is counted in RV(malformed).
    type: str
  until:
    description:
      - Only events at or before this time; same forms as O(since). O(since) after O(until) fails the task.
    type: str
  now:
    description:
      - The current time for relative O(since)/O(until), as ISO 8601. Defaults to the managed host's clock; meant for
        tests and reproducible reports.
    type: str
  limit:
    description:
      - Return at most this many matching events in RV(events), the newest ones, newest last (the runbook's
        C(tail -20)). V(0) returns none; RV(matched), RV(counts) and RV(top) always cover every match.
    type: int
    default: 20
  top:
    description:
      - Return in RV(top) the N most frequent values of each O(top_by) field among the matches (the runbook's
        C(sort | uniq -c | sort -rn | head -10)). V(0) for none.
    type: int
    default: 10
  top_by:
    description:
      - The fields counted for RV(top) and RV(distinct).
    type: list
    elements: str
    choices: [ip, username]
    default: [ip, username]
notes:
  - Events are returned as written in the log (every field), so a hostile username comes back exactly as it was
    logged; Ansible treats module results as untrusted data and does not template them.
  - Counting RV(top) keeps one counter per distinct value in memory (like the runbook's C(sort)); lines are never
    kept, except the O(limit) newest matches.
seealso:
  - module: apigw.ops.gateway_ratelimit_info
  - module: apigw.ops.gateway_ratelimit
'''

EXAMPLES = r'''
- name: Login failures of the last 15 minutes and the 10 attacking IPs (runbook "Brute Force Attack", 1 and 2)
  apigw.ops.gateway_audit:
    path: /var/lib/apigw/logs/audit-logs.json
    event_type: LOGIN_FAILURE
    since: 15m
    top: 10
  register: failures

- name: Show them
  ansible.builtin.debug:
    msg: "{{ failures.matched }} failures; top IPs {{ failures.top.ip | map(attribute='value') | list }}"

- name: Review successful logins per user for compromised accounts (runbook "Brute Force Attack", resolution 4)
  apigw.ops.gateway_audit:
    path: /var/lib/apigw/logs/audit-logs.json
    event_type: LOGIN_SUCCESS
    top: 1000
    top_by: [username]
    limit: 0

- name: Everything about one request, in the audit and the request logs (runbook "Filter by request ID")
  apigw.ops.gateway_audit:
    path: /var/lib/apigw/logs/audit-logs.json
    request_log: [/var/lib/apigw/logs/gateway-3000.log]
    request_id: abc123

- name: Request rate and top IPs over the last 5 minutes, from the request logs (runbook "DDoS Attack")
  apigw.ops.gateway_audit:
    audit: false
    request_log: "{{ query('ansible.builtin.fileglob', '/var/lib/apigw/logs/gateway-*.log') }}"
    include_rotated: true
    event_type: REQUEST
    since: 5m
    top: 20
    top_by: [ip]
    limit: 0

- name: 5xx answers and error lines of the last hour (runbook "High Error Rate")
  apigw.ops.gateway_audit:
    audit: false
    request_log: [/var/lib/apigw/logs/gateway-3000.log]
    event_type: [REQUEST, ERROR]
    status: [5xx]
    since: 1h
    limit: 50
'''

RETURN = r'''
matched:
  description: Events that matched every filter.
  returned: always
  type: int
  sample: 1532
counts:
  description: Matching events per event type.
  returned: always
  type: dict
  sample: {LOGIN_FAILURE: 1500, ACCOUNT_LOCKED: 32}
top:
  description:
    - Per O(top_by) field, the O(top) most frequent values among the matches, most frequent first; ties in value
      order. Events without the field (or with V(null)) are not counted.
    - Empty when O(top=0).
  returned: always
  type: dict
  sample: {ip: [{value: 203.0.113.7, count: 1200}, {value: 198.51.100.4, count: 300}],
           username: [{value: admin, count: 900}]}
distinct:
  description: Per O(top_by) field, the number of distinct values among the matches (empty when O(top=0)).
  returned: always
  type: dict
  sample: {ip: 2, username: 14}
events:
  description:
    - The newest O(limit) matching events, newest last, each as written in the log. With O(request_log), the
      sources are interleaved by C(timestamp).
  returned: always
  type: list
  elements: dict
  sample:
    - {timestamp: "2026-01-15T10:00:00.123Z", eventType: LOGIN_FAILURE, username: admin, ip: 203.0.113.7,
       requestId: 9f1c0a, reason: invalid_credentials, failures: 3}
lines:
  description: Lines read, in every file.
  returned: always
  type: int
  sample: 1000000
malformed:
  description: Lines skipped because they could not be read as an event (see the description); never fatal.
  returned: always
  type: int
  sample: 2
malformed_sample:
  description: The first (at most 5) skipped lines, with file, line number and reason.
  returned: always
  type: list
  elements: dict
  sample: [{file: /var/lib/apigw/logs/audit-logs.json, line: 17, reason: "not JSON (Expecting value)"}]
files:
  description: The files read, in order, with the lines read and the matches in each.
  returned: always
  type: list
  elements: dict
  sample: [{path: /var/lib/apigw/logs/audit-logs.json, lines: 1000000, matched: 1532}]
window:
  description: The time window applied (ISO 8601, UTC), V(null) without O(since)/O(until).
  returned: always
  type: dict
  sample: {since: "2026-01-15T09:45:00.000Z", until: null}
elapsed:
  description: Seconds spent reading.
  returned: always
  type: float
  sample: 1.8
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.audit import (
    DEFAULT_PATH,
    TOP_FIELDS,
    AuditError,
    AuditQuery,
    log_files,
    read_logs,
)


def argument_spec():
    return dict(
        path=dict(type='path', default=DEFAULT_PATH),
        audit=dict(type='bool', default=True),
        request_log=dict(type='list', elements='path'),
        include_rotated=dict(type='bool', default=False),
        event_type=dict(type='list', elements='str'),
        username=dict(type='list', elements='str'),
        username_regex=dict(type='str'),
        ip=dict(type='list', elements='str'),
        request_id=dict(type='list', elements='str'),
        status=dict(type='list', elements='str'),
        line_regex=dict(type='str'),
        since=dict(type='str'),
        until=dict(type='str'),
        now=dict(type='str'),
        limit=dict(type='int', default=20),
        top=dict(type='int', default=10),
        top_by=dict(type='list', elements='str', choices=list(TOP_FIELDS), default=list(TOP_FIELDS)),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        query = AuditQuery(params)                                  # input checks, no I/O
        if not params['audit'] and not params['request_log']:
            raise AuditError('Nothing to read: audit=false needs request_log.')
        audit_files = log_files(params['path'], params['include_rotated'], 'Audit log',
                                "Set path to the gateway's AUDIT_LOG_FILE (the contract's default is %s in the "
                                "gateway's directory)." % DEFAULT_PATH) if params['audit'] else []
        request_files = []
        for path in params['request_log'] or []:
            request_files.extend(log_files(path, params['include_rotated'], 'Request log',
                                           "Set request_log to the gateway's stdout log files."))
    except AuditError as exc:
        module.fail_json(msg=str(exc))
    result = read_logs(query, audit_files, request_files)           # read-only
    for warning in result.pop('warnings'):
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
