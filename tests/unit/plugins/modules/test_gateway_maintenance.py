# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""gateway_maintenance through main(), against real redis-server processes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.apigw.ops.plugins.module_utils import maintenance
from ansible_collections.apigw.ops.plugins.modules import gateway_maintenance

KEY = 'gateway:maintenance'
ON = dict(retry_after=120, maintenance_message='Upgrading Redis', reason='CHG-42 Redis 7.2', operator='alice')


def run(capsys, check_mode=False, **args):
    if check_mode:
        args['_ansible_check_mode'] = True
    args['_ansible_diff'] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        gateway_maintenance.main()
    return json.loads(capsys.readouterr().out)


def four_ways(capsys, **args):
    results = [run(capsys, check_mode=check, **args) for check in (True, False, True, False)]
    assert results[0]['changed'] and results[1]['changed'], results[:2]
    assert not results[2]['changed'] and not results[3]['changed'], results[2:]
    assert results[0]['verified'] is None and results[1]['verified'] is True and results[3]['verified'] is True
    return results


def cli(topo, *args):
    return topo.primary.cli(*((['-c'] if topo.kind == 'cluster' else []) + list(args)))


def read_hash(topo, key=KEY):
    lines = cli(topo, 'HGETALL', key).splitlines()
    return dict(zip(lines[0::2], lines[1::2]))


def ttl(topo, key=KEY):
    return int(cli(topo, 'TTL', key).strip())


def flush(topo):
    for server in topo.servers:
        server.cli('FLUSHALL')


@pytest.fixture(params=['standalone', 'cluster'])
def topo(request, redis_standalone, redis_cluster_topology):
    topo = redis_standalone if request.param == 'standalone' else redis_cluster_topology
    flush(topo)
    return topo


def test_enable_four_ways(capsys, topo):
    results = four_ways(capsys, **dict(ON, **topo.connection()))
    stored = read_hash(topo)
    assert {k: stored[k] for k in ('enabled', 'retry_after', 'message', 'reason', 'operator')} == {
        'enabled': 'true', 'retry_after': '120', 'message': 'Upgrading Redis', 'reason': 'CHG-42 Redis 7.2',
        'operator': 'alice'}
    assert sorted(stored) == ['enabled', 'enabled_at', 'message', 'operator', 'reason', 'retry_after']
    assert ttl(topo) == -1
    # the check run predicted what the real run wrote; the later runs saw it unchanged
    assert results[0]['diff']['before'] == {KEY: None}
    assert results[1]['diff']['after'] == {KEY: stored}
    assert results[3]['diff']['before'] == results[3]['diff']['after'] == {KEY: stored}
    assert results[0]['previous']['enabled'] is False and results[2]['previous']['enabled'] is True
    facts = results[1]['maintenance']
    assert facts == dict(enabled=True, retry_after=120, message='Upgrading Redis', reason='CHG-42 Redis 7.2',
                         operator='alice', enabled_at=stored['enabled_at'], expires_at=None, ttl=None)
    assert results[0]['maintenance']['retry_after'] == 120 and results[0]['maintenance']['enabled'] is True
    assert results[3]['maintenance'] == facts


def test_check_mode_writes_nothing(capsys, topo):
    result = run(capsys, check_mode=True, **dict(ON, ttl=600, **topo.connection()))
    assert result['changed'] and result['maintenance']['ttl'] == 600
    assert read_hash(topo) == {} and ttl(topo) == -2
    cli(topo, 'HSET', KEY, 'enabled', 'true', 'retry_after', '120', 'message', 'Upgrading Redis')
    result = run(capsys, check_mode=True, state='absent', **topo.connection())
    assert result['changed'] and result['maintenance']['enabled'] is False and result['previous']['enabled'] is True
    assert read_hash(topo)['enabled'] == 'true'


def test_defaults_are_the_gateways(capsys, topo):
    four_ways(capsys, **topo.connection())
    stored = read_hash(topo)
    assert stored['retry_after'] == '300' and stored['message'] == 'Service temporarily unavailable for maintenance'
    assert 'reason' not in stored and 'operator' not in stored


def test_change_while_on_keeps_start_and_audit(capsys, topo):
    run(capsys, **dict(ON, **topo.connection()))
    started = read_hash(topo)['enabled_at']
    cli(topo, 'HSET', KEY, 'enabled_at', '2026-01-15T02:00:00Z')  # an earlier start, to tell them apart
    results = four_ways(capsys, retry_after=900, maintenance_message='Taking longer than planned', **topo.connection())
    stored = read_hash(topo)
    assert started and stored['enabled_at'] == '2026-01-15T02:00:00Z'
    assert stored['retry_after'] == '900' and stored['message'] == 'Taking longer than planned'
    assert stored['reason'] == 'CHG-42 Redis 7.2' and stored['operator'] == 'alice'  # kept: not given this time
    assert results[1]['diff']['before'][KEY]['retry_after'] == '120'


def test_ttl_ends_a_forgotten_window_and_is_not_extended(capsys, topo):
    results = four_ways(capsys, **dict(ON, ttl=600, **topo.connection()))
    assert 0 < ttl(topo) <= 600
    stored = read_hash(topo)
    assert stored['expires_at'] == results[1]['maintenance']['expires_at']
    assert 0 < results[3]['maintenance']['ttl'] <= 600
    cli(topo, 'EXPIRE', KEY, 30)  # close to its end: the same task again does not extend it
    again = run(capsys, **dict(ON, ttl=600, **topo.connection()))
    assert not again['changed'] and 0 < ttl(topo) <= 30
    # the expiry is a real one: when it passes, the hash is gone and the gateway is out of maintenance
    cli(topo, 'PEXPIRE', KEY, 1)
    time.sleep(0.05)
    assert read_hash(topo) == {}
    assert run(capsys, check_mode=True, state='absent', **topo.connection())['changed'] is False


def test_expires_is_idempotent_and_movable(capsys, topo):
    first = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() + 3600))
    four_ways(capsys, **dict(ON, expires=first, **topo.connection()))
    assert read_hash(topo)['expires_at'] == first and 3500 < ttl(topo) <= 3600
    later = int(time.time()) + 7200
    results = four_ways(capsys, **dict(ON, expires=str(later), **topo.connection()))
    assert read_hash(topo)['expires_at'] == maintenance.iso(later) and 7100 < ttl(topo) <= 7200
    assert results[1]['diff']['before'][KEY]['expires_at'] == first
    # with an offset: the same moment in another zone is the same expiry
    offset = time.strftime('%Y-%m-%dT%H:%M:%S+02:00', time.gmtime(later + 7200))
    assert not run(capsys, **dict(ON, expires=offset, **topo.connection()))['changed']


def test_no_expiry_removes_an_earlier_one(capsys, topo):
    run(capsys, **dict(ON, ttl=600, **topo.connection()))
    results = four_ways(capsys, **dict(ON, **topo.connection()))
    assert ttl(topo) == -1 and 'expires_at' not in read_hash(topo)
    assert results[1]['maintenance']['ttl'] is None


def test_disable_four_ways(capsys, topo):
    run(capsys, **dict(ON, ttl=600, **topo.connection()))
    results = four_ways(capsys, state='absent', **topo.connection())
    assert read_hash(topo) == {} and ttl(topo) == -2
    assert results[1]['diff']['after'] == {KEY: None}
    assert results[1]['diff']['before'][KEY]['reason'] == 'CHG-42 Redis 7.2'
    assert results[1]['maintenance'] == dict(enabled=False, retry_after=None, message=None, reason=None,
                                             operator=None, enabled_at=None, expires_at=None, ttl=None)


def test_hand_written_hash(capsys, topo):
    """A hash written as the runbook did (redis-cli hset) is read as the gateway reads it."""
    cli(topo, 'HSET', KEY, 'enabled', 'Yes', 'retry_after', '300', 'message', 'Service temporarily unavailable for '
        'maintenance', 'ticket', 'INC-7')
    result = run(capsys, **topo.connection())
    assert not result['changed'] and result['previous']['enabled'] is True  # same values: not rewritten
    assert read_hash(topo)['enabled'] == 'Yes'
    cli(topo, 'HSET', KEY, 'enabled', 'false')
    assert not run(capsys, state='absent', **topo.connection())['changed']  # off already: left as it is
    assert read_hash(topo)['ticket'] == 'INC-7'
    results = four_ways(capsys, **topo.connection())  # on again: a new window, foreign fields kept
    stored = read_hash(topo)
    assert stored['enabled'] == 'true' and stored['ticket'] == 'INC-7' and stored['enabled_at']
    assert results[1]['previous']['enabled'] is False


def test_keyspace_override(capsys, topo):
    four_ways(capsys, keyspace={'maintenance': 'edge:{{maint}}'}, **dict(ON, **topo.connection()))
    assert read_hash(topo, 'edge:{maint}')['enabled'] == 'true' and read_hash(topo) == {}


@pytest.mark.parametrize('args, message', [
    (dict(retry_after=0), 'retry_after must be 1 or more seconds (got 0)'),
    (dict(retry_after=300000), 'retry_after is in seconds and 300000 s is more than a day'),
    (dict(maintenance_message=''), 'Empty maintenance_message'),
    (dict(maintenance_message='   '), 'Empty maintenance_message'),
    (dict(maintenance_message='line one\nline two'), 'The maintenance_message has a line break'),
    (dict(maintenance_message='x' * 501), 'The maintenance_message is 501 characters long; at most 500'),
    (dict(reason=''), 'Empty reason'),
    (dict(operator='a\rb'), 'The operator has a line break'),
    (dict(ttl=0), 'ttl must be a positive number of seconds (got 0)'),
    (dict(ttl=60, expires='2099-01-01T00:00:00Z'), 'Give ttl or expires, not both'),
    (dict(expires='2001-01-01T00:00:00Z'), 'is not in the future'),
    (dict(expires='2099-01-01T00:00:00'), 'has no time zone'),
    (dict(expires='tomorrow'), "expires 'tomorrow' is not a time"),
    (dict(state='absent', retry_after=60), 'retry_after only applies to state=present'),
    (dict(state='absent', ttl=60, maintenance_message='x'), 'maintenance_message, ttl only apply to state=present'),
    (dict(keyspace={'maintenance': ''}), 'keyspace.maintenance must be a non-empty string template'),
])
def test_bad_input(capsys, redis_standalone, args, message):
    redis_standalone.primary.cli('HSET', KEY, 'enabled', 'true', 'retry_after', '60', 'message', 'before')
    result = run(capsys, **dict(args, **redis_standalone.connection()))
    assert result['failed'] and message in result['msg'] and '\n' not in result['msg'], result
    assert read_hash(redis_standalone) == {'enabled': 'true', 'retry_after': '60', 'message': 'before'}


def test_not_a_hash(capsys, redis_standalone):
    redis_standalone.primary.cli('SET', KEY, 'on')
    for state in ('present', 'absent'):
        result = run(capsys, state=state, **redis_standalone.connection())
        assert result['failed'] and result['msg'].startswith('gateway:maintenance is a string, not a hash')
    assert redis_standalone.primary.cli('GET', KEY).strip() == 'on'


def test_password_and_wrong_password(capsys, redis_password):
    conn = redis_password.connection()
    redis_password.primary.cli('DEL', KEY)
    four_ways(capsys, **dict(ON, **conn))
    four_ways(capsys, state='absent', **conn)
    result = run(capsys, **dict(conn, password='wrong'))
    assert result['failed'] and result['msg'].startswith('Authentication to Redis at') and '\n' not in result['msg']
    result = run(capsys, **dict(conn, password=None))
    assert result['failed'] and 'requires a password (NOAUTH)' in result['msg']


def test_acl_user(capsys, redis_acl):
    conn = redis_acl.connection()
    redis_acl.primary.cli('DEL', KEY)
    four_ways(capsys, **dict(ON, ttl=60, **conn))
    assert redis_acl.primary.cli('HGET', KEY, 'operator').strip() == 'alice'
    four_ways(capsys, state='absent', **conn)


def test_redis_down_then_rerun(capsys, redis_fresh):
    redis_fresh.primary.kill()
    result = run(capsys, **dict(ON, **redis_fresh.connection()))
    assert result['failed'] and result['msg'].startswith('Cannot connect to Redis') and '\n' not in result['msg']
    redis_fresh.primary.start()
    assert run(capsys, **dict(ON, **redis_fresh.connection()))['maintenance']['enabled'] is True
