# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the gateway_audit module (run through main() with patch_module_args, on real files)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import collections
import gzip
import json
import os
import tracemalloc

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.apigw.ops.plugins.module_utils import audit as A
from ansible_collections.apigw.ops.plugins.modules import gateway_audit

HOSTILE = [
    u"al*ce", u"alice", u"a\"b\\c", u"line\nbreak", u"{{ lookup('pipe', 'id') }}", u"Zoë", u"用户",
    u"\u202eevil", u"\U0001F600", u"' OR 1=1 --", u"<script>x</script>", u"tab\there", u"",
]


def run(capsys, check_mode=False, **args):
    if check_mode:
        args['_ansible_check_mode'] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        gateway_audit.main()
    return json.loads(capsys.readouterr().out)


def event(n, event_type='LOGIN_FAILURE', username='alice', ip='10.0.0.1', **extra):
    record = {'timestamp': A.iso(1768471200 + n), 'eventType': event_type, 'username': username, 'ip': ip,
              'requestId': 'req-%d' % n}
    record.update(extra)
    return record


def write(path, records, ensure_ascii=False, opener=open):
    with opener(str(path), 'wt', encoding='utf-8', newline='') as handle:
        for record in records:
            handle.write(record if isinstance(record, str) else json.dumps(record, ensure_ascii=ensure_ascii))
            handle.write('\n')
    return str(path)


def test_counts_top_and_newest_last(tmp_path, capsys):
    records = [event(n, ['LOGIN_FAILURE', 'LOGIN_SUCCESS', 'ACCOUNT_LOCKED'][n % 3],
                     username=['alice', 'bob'][n % 2], ip='10.0.%d.%d' % (n % 4, n % 7)) for n in range(500)]
    path = write(tmp_path / 'audit-logs.json', records)
    res = run(capsys, path=path, event_type=['login_failure'], limit=20, top=3)
    failures = [r for r in records if r['eventType'] == 'LOGIN_FAILURE']
    assert not res['changed'] and res['matched'] == len(failures) and res['counts'] == {'LOGIN_FAILURE': 167}
    assert res['events'] == failures[-20:]                     # jq 'select(...)' | tail -20
    by_ip = collections.Counter(r['ip'] for r in failures)
    expected = sorted(by_ip.items(), key=lambda item: (-item[1], item[0]))[:3]
    assert [(t['value'], t['count']) for t in res['top']['ip']] == expected
    assert res['distinct'] == {'ip': len(by_ip), 'username': 2}
    assert res['lines'] == 500 and res['malformed'] == 0 and res['window'] is None
    assert res['files'] == [{'path': path, 'lines': 500, 'matched': 167}]
    everything = run(capsys, path=path, limit=0, top=0)
    assert everything['counts'] == {'ACCOUNT_LOCKED': 166, 'LOGIN_FAILURE': 167, 'LOGIN_SUCCESS': 167}
    assert everything['events'] == [] and everything['top'] == {} and everything['distinct'] == {}


def test_check_mode_is_the_same_read(tmp_path, capsys):
    path = write(tmp_path / 'a.json', [event(n) for n in range(10)])
    before = os.stat(path)
    real = run(capsys, path=path)
    check = run(capsys, check_mode=True, path=path)
    for res in (real, check):
        res.pop('elapsed')
        res.pop('invocation', None)
    assert real == check and not check['changed']
    assert os.stat(path).st_mtime == before.st_mtime and os.stat(path).st_size == before.st_size


def test_malformed_lines_are_counted_never_fatal(tmp_path, capsys):
    path = str(tmp_path / 'audit-logs.json')
    with open(path, 'wb') as handle:
        handle.write(json.dumps(event(1)).encode() + b'\n')
        handle.write(b'not json at all\n')
        handle.write(b'{"eventType": "LOGIN_FAILURE", "ip": \n')             # cut in the middle
        handle.write(b'{"eventType": "LOGIN_FAILURE", "username": "\xff"}\n')  # not UTF-8
        handle.write(b'[1, 2, 3]\n')                                        # JSON, not an object
        handle.write(b'{"username": "x", "ip": "10.0.0.9"}\n')               # no eventType
        handle.write(b'\n   \n')                                            # blank lines: ignored
        handle.write(b'{"eventType": "LOGIN_FAILURE", "username": "' + b'x' * (A.MAX_LINE + 10) + b'"}\n')
        handle.write(json.dumps(event(2)).encode() + b'\n')
        handle.write(b'{"eventType": "LOGIN_FAIL')                          # last line, no newline
    res = run(capsys, path=path)
    assert res['matched'] == 2 and res['malformed'] == 7 and res['lines'] == 11
    reasons = [s['reason'] for s in res['malformed_sample']]
    assert len(reasons) == A.SAMPLE
    assert reasons[0].startswith('not JSON') and 'not UTF-8' in reasons and 'not a JSON object' in reasons
    assert 'no eventType' in reasons
    assert [s['line'] for s in res['malformed_sample']] == [2, 3, 4, 5, 6]
    assert res['events'] == [event(1), event(2)]
    # with a filter, lines the byte screen skips are still counted when they do not look like JSON objects
    screened = run(capsys, path=path, event_type=['TOKEN_REFRESH'])
    assert screened['matched'] == 0 and screened['malformed'] >= 3


def test_hostile_and_unicode_usernames_are_literal(tmp_path, capsys):
    records = [event(n, username=name, ip='10.1.0.%d' % (n + 1)) for n, name in enumerate(HOSTILE)]
    records.append(event(99, username=None, ip='10.1.0.99'))
    for ensure_ascii in (False, True):        # raw UTF-8 (orjson, Node) and \u escapes (Python's json)
        path = write(tmp_path / ('a%d.json' % int(ensure_ascii)), records, ensure_ascii=ensure_ascii)
        for name in HOSTILE:
            res = run(capsys, path=path, username=[name], event_type=['LOGIN_FAILURE'])
            assert res['matched'] == 1 and res['events'][0]['username'] == name, (ensure_ascii, name)
            assert res['top']['username'] == [{'value': name, 'count': 1}]
        everything = run(capsys, path=path, top=100)
        assert sorted(t['value'] for t in everything['top']['username']) == sorted(HOSTILE)
        assert everything['distinct']['username'] == len(HOSTILE)          # null usernames are not counted
    regex = run(capsys, path=path, username_regex=r'^al.ce$')
    assert sorted(e['username'] for e in regex['events']) == ['al*ce', 'alice']
    literal = run(capsys, path=path, username=['al*ce'])
    assert [e['username'] for e in literal['events']] == ['al*ce']


def test_escaped_lines_pass_the_byte_screen(tmp_path, capsys):
    path = str(tmp_path / 'a.json')
    with open(path, 'w') as handle:
        handle.write('{"timestamp": "2026-01-15T10:00:00Z", "eventType": "LOGIN_\\u0046AILURE", "username": "bob", '
                     '"ip": "10.0.0.1", "requestId": "r\\u0031"}\n')
        handle.write('{"eventType":"LOGIN_FAILURE","username":"bob","ip":"10.0.0.2","requestId":"r2"}\n')
    assert run(capsys, path=path, event_type=['LOGIN_FAILURE'])['matched'] == 2
    assert [e['ip'] for e in run(capsys, path=path, request_id=['r1'])['events']] == ['10.0.0.1']
    assert run(capsys, path=path, event_type=['LOGIN_FAILURE'], username=['bob'], request_id=['r2'])['matched'] == 1


def test_time_window(tmp_path, capsys):
    base = 1768471200                                 # 2026-01-15T10:00:00Z
    records = [event(n * 60) for n in range(60)]      # one a minute, 10:00 .. 10:59
    records.append({'timestamp': '2026-01-15T11:30:00+01:00', 'eventType': 'LOGIN_FAILURE', 'ip': '10.9.9.9'})
    records.append({'timestamp': base + 3000, 'eventType': 'LOGIN_FAILURE', 'ip': '10.8.8.8'})          # epoch s
    records.append({'timestamp': (base + 3001) * 1000, 'eventType': 'LOGIN_FAILURE', 'ip': '10.7.7.7'})  # epoch ms
    records.append({'eventType': 'LOGIN_FAILURE', 'ip': '10.6.6.6'})                                   # no time
    records.append({'timestamp': 'yesterday', 'eventType': 'LOGIN_FAILURE', 'ip': '10.5.5.5'})
    path = write(tmp_path / 'a.json', records)
    res = run(capsys, path=path, since='2026-01-15T10:10:00Z', until='2026-01-15T10:19:00Z')
    assert res['matched'] == 10 and res['malformed'] == 2           # both bounds included
    assert res['window'] == {'since': '2026-01-15T10:10:00.000Z', 'until': '2026-01-15T10:19:00.000Z'}
    relative = run(capsys, path=path, since='15m', now='2026-01-15T11:00:00Z')
    assert relative['matched'] == 15 + 2                           # 10:45..10:59, then epoch s and ms
    assert relative['window'] == {'since': '2026-01-15T10:45:00.000Z', 'until': None}
    offset = run(capsys, path=path, since='2026-01-15T11:30:00+01:00', until='2026-01-15T10:30:00Z')
    assert sorted(e['ip'] for e in offset['events']) == ['10.0.0.1', '10.9.9.9']
    day = run(capsys, path=path, since='2026-01-15', until='1m', now='2026-01-15T10:05:30Z')
    assert day['matched'] == 5                                       # 10:00 .. 10:04 (until = 10:04:30)
    assert run(capsys, path=path)['malformed'] == 0                  # without a window, times are not read


@pytest.mark.parametrize('args, message', [
    (dict(since='2026-01-15T11:00:00Z', until='2026-01-15T10:00:00Z'), 'The time window is empty'),
    (dict(since='last tuesday'), "since='last tuesday' is not a time"),
    (dict(until='15 parsecs'), 'is not a time'),
    (dict(since='2026-13-45'), 'is not a time'),
    (dict(username_regex='(unclosed'), "username_regex='(unclosed' is not a valid regular expression"),
    (dict(line_regex='[z-a]'), 'line_regex'),
    (dict(ip=['10.0.0.300']), "ip='10.0.0.300' is not an IP address or network"),
    (dict(status=['600']), "status='600'"),
    (dict(username=[]), 'Empty username list'),
    (dict(limit=-1), 'limit must be 0 or more'),
    (dict(top=-5), 'top must be 0 or more'),
    (dict(audit=False), 'Nothing to read'),
])
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    path = write(tmp_path / 'a.json', [event(1)])
    res = run(capsys, path=path, **args)
    assert res['failed'] and message in res['msg'] and '\n' not in res['msg'] and 'Traceback' not in res['msg']


def test_missing_unreadable_or_directory(tmp_path, capsys):
    res = run(capsys, path=str(tmp_path / 'nope.json'))
    assert res['failed'] and res['msg'].startswith('Audit log %s does not exist' % (tmp_path / 'nope.json'))
    assert 'AUDIT_LOG_FILE' in res['msg'] and '\n' not in res['msg']
    res = run(capsys, path=str(tmp_path))
    assert res['failed'] and 'is a directory' in res['msg']
    res = run(capsys, path=write(tmp_path / 'a.json', [event(1)]), request_log=[str(tmp_path / 'gw.log')])
    assert res['failed'] and res['msg'].startswith('Request log %s does not exist' % (tmp_path / 'gw.log'))
    locked = write(tmp_path / 'locked.json', [event(1)])
    os.chmod(locked, 0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip('running as root: every file is readable')
        res = run(capsys, path=locked)
        assert res['failed'] and 'is not readable by this user' in res['msg'] and '\n' not in res['msg']
    finally:
        os.chmod(locked, 0o600)


def test_rotated_and_compressed_files(tmp_path, capsys):
    live = write(tmp_path / 'audit-logs.json', [event(n) for n in range(20, 30)])
    first = write(tmp_path / 'audit-logs.json.2.gz', [event(n) for n in range(0, 10)], opener=gzip.open)
    second = write(tmp_path / 'audit-logs.json.1', [event(n) for n in range(10, 20)])
    write(tmp_path / 'audit-logs.json.bak', [event(99)])               # not a rotation: ignored
    write(tmp_path / 'audit-logs.jsonl', [event(98)])                  # another file: ignored
    os.utime(first, (1000, 1000))
    os.utime(second, (2000, 2000))
    res = run(capsys, path=live, include_rotated=True, limit=30)
    assert [f['path'] for f in res['files']] == [first, second, live]
    assert [e['requestId'] for e in res['events']] == ['req-%d' % n for n in range(30)]
    assert run(capsys, path=live)['matched'] == 10
    # a truncated archive (rotation interrupted): what could be read is counted, with a warning
    data = gzip.compress(''.join(json.dumps(event(n)) + '\n' for n in range(1000)).encode())
    with open(first, 'wb') as handle:
        handle.write(data[:len(data) // 2])
    res = run(capsys, path=live, include_rotated=True, limit=0)
    assert 10 + 10 < res['matched'] < 1000 + 20
    warnings = json.dumps(res['warnings'])          # plain strings before ansible-core 2.19, objects since
    assert 'stopped reading' in warnings and first in warnings and 'the lines before it are counted' in warnings


def test_request_log_requests_errors_and_merge(tmp_path, capsys):
    base_ms = 1768471200000
    lines = []
    for n in range(10):
        lines.append({'level': 'info', 'time': base_ms + n * 1000 + 500, 'pid': 1, 'msg': 'Incoming request',
                      'requestId': 'req-%d' % n, 'method': 'GET', 'path': '/x', 'ip': '10.0.0.%d' % (n % 3),
                      'status': [200, 503, 429][n % 3], 'duration': 1.5})
    lines.append({'level': 'error', 'time': base_ms + 4200, 'msg': 'Unhandled error', 'requestId': 'req-4',
                  'error': 'ValueError()'})
    lines.append({'level': 60, 'time': base_ms + 4300, 'msg': 'pino fatal'})
    lines.append({'level': 'info', 'time': base_ms, 'msg': 'Gateway worker started'})
    lines.append('INFO: plain text from a library')
    request_log = write(tmp_path / 'gateway-3000.log', lines)
    audit = write(tmp_path / 'audit-logs.json', [event(n) for n in range(10)])
    res = run(capsys, path=audit, request_log=[request_log], limit=100)
    assert res['counts'] == {'ERROR': 2, 'LOGIN_FAILURE': 10, 'REQUEST': 10} and res['malformed'] == 1
    times = [A.record_time(e['timestamp']) for e in res['events']]
    assert times == sorted(times) and len(res['events']) == 22               # interleaved by time
    one = run(capsys, path=audit, request_log=[request_log], request_id=['req-4'])
    assert [e['eventType'] for e in one['events']] == ['LOGIN_FAILURE', 'ERROR', 'REQUEST']
    errors = run(capsys, audit=False, request_log=[request_log], event_type=['REQUEST'], status=['5xx', '429'],
                 top_by=['ip'])
    assert errors['counts'] == {'REQUEST': 6} and errors['top'] == {'ip': [
        {'value': '10.0.0.1', 'count': 3}, {'value': '10.0.0.2', 'count': 3}]}
    assert errors['events'][0]['timestamp'] == A.iso((base_ms + 1500) / 1000.0)
    grep = run(capsys, audit=False, request_log=[request_log], line_regex='(?i)error|exception')
    assert grep['counts'] == {'ERROR': 1}


def test_ip_networks_and_mapped_addresses(tmp_path, capsys):
    path = write(tmp_path / 'a.json', [event(1, ip='192.168.1.7'), event(2, ip='::ffff:192.168.1.8'),
                                       event(3, ip='192.168.2.1'), event(4, ip='2001:db8::1'), event(5, ip=None),
                                       event(6, ip='unknown')])
    assert run(capsys, path=path, ip=['192.168.1.0/24'])['matched'] == 2
    assert run(capsys, path=path, ip=['192.168.1.8'])['matched'] == 1
    assert run(capsys, path=path, ip=['2001:db8::/32', '192.168.2.1'])['matched'] == 2
    refused = run(capsys, path=path, ip=['unknown'])
    assert refused['failed'] and "ip='unknown' is not an IP address or network" in refused['msg']


def test_top_ties_are_in_value_order(tmp_path, capsys):
    ips = ['10.0.0.9'] * 5 + ['10.0.0.3', '10.0.0.1', '10.0.0.2'] * 3 + ['10.0.0.4'] * 3 + ['10.0.0.5']
    path = write(tmp_path / 'a.json', [event(n, ip=ip) for n, ip in enumerate(ips)])
    res = run(capsys, path=path, top=3, top_by=['ip'])
    assert res['top'] == {'ip': [{'value': '10.0.0.9', 'count': 5}, {'value': '10.0.0.1', 'count': 3},
                                 {'value': '10.0.0.2', 'count': 3}]}
    assert res['distinct'] == {'ip': 6}
    assert len(run(capsys, path=path, top=100)['top']['ip']) == 6


def test_large_file_is_streamed(tmp_path, capsys):
    path = str(tmp_path / 'big.json')
    line = json.dumps(event(0, reason='invalid_credentials', failures=3, padding='p' * 1200)) + '\n'
    other = line.replace('LOGIN_FAILURE', 'LOGIN_SUCCESS')
    count = 30000                                                   # ~40 MB
    with open(path, 'w') as handle:
        for _block in range(0, count, 1000):
            handle.write((line * 2 + other) * 333 + line)
    size = os.path.getsize(path)
    res = run(capsys, path=path, event_type=['LOGIN_FAILURE'], limit=20)
    assert res['lines'] == count and res['matched'] == count - 333 * count // 1000
    tracemalloc.start()
    try:
        res_all = run(capsys, path=path, limit=20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res_all['matched'] == count and len(res_all['events']) == 20
    assert peak < size / 10, (peak, size)
