# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""gateway_lockout and gateway_lockout_info through main(), against real redis-server processes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.apigw.ops.plugins.modules import gateway_lockout, gateway_lockout_info

KEYS = ('lockout:alice:10.0.0.1', 'lockout:alice:10.0.0.2', 'loginfail:alice:10.0.0.3',
        'lockout:al*ce:10.0.0.1', 'loginfail:al*ce:10.0.0.1', 'lockout:*:10.0.0.9',
        'lockout:bob:10.0.0.1', 'loginfail:alice2:10.0.0.1')


def run(capsys, module, check_mode=False, **args):
    if check_mode:
        args['_ansible_check_mode'] = True
    args['_ansible_diff'] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def four_ways(capsys, module, **args):
    results = [run(capsys, module, check_mode=check, **args) for check in (True, False, True, False)]
    assert results[0]['changed'] and results[1]['changed'], results[:2]
    assert not results[2]['changed'] and not results[3]['changed'], results[2:]
    return results


def keys(topo):
    out = []
    for server in topo.servers:
        out += server.cli('--scan').split()
    return sorted(out)


def load(topo):
    for server in topo.servers:
        server.cli('FLUSHALL')
    args = ['-c'] if topo.kind == 'cluster' else []
    for key in KEYS:
        topo.primary.cli(*(args + ['SET', key, 3, 'EX', 900]))


@pytest.fixture(params=['standalone', 'cluster'])
def topo(request, redis_standalone, redis_cluster_topology):
    topo = redis_standalone if request.param == 'standalone' else redis_cluster_topology
    load(topo)
    return topo


def test_unlock_glob_name_is_literal(capsys, topo):
    results = four_ways(capsys, gateway_lockout, username='al*ce', **topo.connection())
    assert results[1]['lockouts'] == ['lockout:al*ce:10.0.0.1']
    assert results[1]['failures'] == ['loginfail:al*ce:10.0.0.1']
    assert results[1]['verified'] is True and results[1]['remaining'] == 0
    assert results[0]['verified'] is None and results[3]['verified'] is True
    assert keys(topo) == sorted(set(KEYS) - {'lockout:al*ce:10.0.0.1', 'loginfail:al*ce:10.0.0.1'})


def test_unlock_star_is_literal(capsys, topo):
    four_ways(capsys, gateway_lockout, username='*', **topo.connection())
    assert keys(topo) == sorted(set(KEYS) - {'lockout:*:10.0.0.9'})


def test_unlock_all_ips_with_failures(capsys, topo):
    before = keys(topo)
    check = run(capsys, gateway_lockout, check_mode=True, username='alice', **topo.connection())
    assert keys(topo) == before and check['deleted'] == 3
    results = four_ways(capsys, gateway_lockout, username='alice', **topo.connection())
    assert results[1]['diff']['before'] == {
        'lockouts': ['lockout:alice:10.0.0.1', 'lockout:alice:10.0.0.2'], 'failures': ['loginfail:alice:10.0.0.3']}
    remaining = keys(topo)
    assert not [k for k in remaining if ':alice:' in k]
    assert 'loginfail:alice2:10.0.0.1' in remaining and 'lockout:al*ce:10.0.0.1' in remaining


def test_unlock_one_ip_keep_failures(capsys, topo):
    four_ways(capsys, gateway_lockout, username='alice', ip='10.0.0.1', clear_failures=False, **topo.connection())
    remaining = keys(topo)
    assert 'lockout:alice:10.0.0.1' not in remaining
    assert 'lockout:alice:10.0.0.2' in remaining and 'loginfail:alice:10.0.0.3' in remaining


def test_lock_four_ways(capsys, topo):
    results = four_ways(capsys, gateway_lockout, username='carol', ip='2001:db8::1', state='present', ttl=600,
                        **topo.connection())
    assert results[1]['key'] == 'lockout:carol:2001:db8::1' and results[1]['verified'] is True
    assert results[0]['diff'] == {'before': {'lockout:carol:2001:db8::1': None},
                                  'after': {'lockout:carol:2001:db8::1': {'ttl': 600}}}
    info = run(capsys, gateway_lockout_info, username='carol', **topo.connection())
    assert info['locked'] and info['lockouts'][0]['ip'] == '2001:db8::1' and 0 < info['lockouts'][0]['ttl'] <= 600


def test_info(capsys, topo):
    info = run(capsys, gateway_lockout_info, username='al*ce', **topo.connection())
    assert [x['key'] for x in info['lockouts']] == ['lockout:al*ce:10.0.0.1']
    assert info['failures'][0]['count'] == 3 and 0 < info['failures'][0]['ttl'] <= 900
    pattern = run(capsys, gateway_lockout_info, username_pattern='al*', **topo.connection())
    assert {x['username'] for x in pattern['lockouts']} == {'alice', 'al*ce'}
    assert {x['username'] for x in pattern['failures']} == {'alice', 'al*ce', 'alice2'}
    by_ip = run(capsys, gateway_lockout_info, ip='10.0.0.1', check_mode=True, **topo.connection())
    assert sorted(x['username'] for x in by_ip['lockouts']) == ['al*ce', 'alice', 'bob']
    assert keys(topo) == sorted(KEYS)


@pytest.mark.parametrize('args, message', [
    (dict(username=''), 'Empty username'),
    (dict(username='alice', ip='10.0.0.*'), "IP '10.0.0.*' is not an IP address"),
    (dict(username='alice', ip='10.0.0.1', state='present', ttl=-5), 'ttl must be a positive number of seconds'),
    (dict(username='alice', ip='10.0.0.1', state='present'), 'state=present needs ttl'),
    (dict(username='alice', state='present', ttl=60), 'state=present needs ip'),
])
def test_bad_input(capsys, redis_standalone, args, message):
    load(redis_standalone)
    result = run(capsys, gateway_lockout, **dict(args, **redis_standalone.connection()))
    assert result['failed'] and message in result['msg'] and '\n' not in result['msg'], result
    assert keys(redis_standalone) == sorted(KEYS)


def test_redis_down_then_rerun(capsys, redis_fresh):
    load(redis_fresh)
    redis_fresh.primary.kill()
    result = run(capsys, gateway_lockout, username='alice', **redis_fresh.connection())
    assert result['failed'] and result['msg'].startswith('Cannot connect to Redis')
    redis_fresh.primary.start()
    load(redis_fresh)
    assert run(capsys, gateway_lockout, username='alice', **redis_fresh.connection())['deleted'] == 3


def test_acl_user_is_redis_username(capsys, redis_acl):
    conn = redis_acl.connection()
    assert conn['redis_username']  # the ACL user; username is the gateway user
    redis_acl.primary.cli('SET', 'lockout:dave:10.0.0.1', 1, 'EX', 60)
    results = four_ways(capsys, gateway_lockout, username='dave', **conn)
    assert results[1]['lockouts'] == ['lockout:dave:10.0.0.1']
    assert redis_acl.primary.cli('EXISTS', 'lockout:dave:10.0.0.1').strip() == '0'
