# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""gateway_ratelimit and gateway_ratelimit_info through main(), against real redis-server processes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.apigw.ops.plugins.modules import gateway_ratelimit, gateway_ratelimit_info


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
    conn = topo.primary
    args = ['-c'] if topo.kind == 'cluster' else []
    for key, value in (('ratelimit:global:10.0.0.1', 120), ('ratelimit:global:10.0.0.2', 7),
                       ('ratelimit:auth:10.0.0.1', 5), ('ratelimit:user:user-123', 4),
                       ('ratelimit:user:user*', 1), ('ratelimit:user:user-1', 2),
                       ('lockout:alice:10.0.0.1', 1), ('ratelimit:other:x', 1)):
        conn.cli(*(args + ['SET', key, value, 'EX', 600]))


@pytest.fixture(params=['standalone', 'cluster'])
def topo(request, redis_standalone, redis_cluster_topology):
    topo = redis_standalone if request.param == 'standalone' else redis_cluster_topology
    load(topo)
    return topo


def test_clear_one_ip_four_ways(capsys, topo):
    results = four_ways(capsys, gateway_ratelimit, scope='global', subject=['10.0.0.1'], **topo.connection())
    check1, apply1 = results[0], results[1]
    assert check1['matched'] == apply1['matched'] == 1 and apply1['deleted'] == 1
    assert apply1['sample'] == ['ratelimit:global:10.0.0.1']
    assert apply1['diff']['before'] == {'count': 1, 'keys': ['ratelimit:global:10.0.0.1']}
    assert 'ratelimit:global:10.0.0.1' not in keys(topo) and 'ratelimit:auth:10.0.0.1' in keys(topo)


def test_user_glob_literal(capsys, topo):
    four_ways(capsys, gateway_ratelimit, scope='user', subject='user*', **topo.connection())
    remaining = keys(topo)
    assert 'ratelimit:user:user*' not in remaining
    assert 'ratelimit:user:user-123' in remaining and 'ratelimit:user:user-1' in remaining


def test_clear_all_needs_confirmation_then_check_mode_is_exact(capsys, topo):
    before = keys(topo)
    refused = run(capsys, gateway_ratelimit, scope='all', **topo.connection())
    assert refused['failed'] and refused['msg'] == \
        'Refusing to clear every rate-limit counter: set confirm_all=true to mean it.'
    check = run(capsys, gateway_ratelimit, check_mode=True, scope='all', confirm_all=True, **topo.connection())
    assert keys(topo) == before  # check mode wrote nothing
    assert check['changed'] and check['matched'] == check['deleted'] == 6
    results = four_ways(capsys, gateway_ratelimit, scope='all', confirm_all=True, **topo.connection())
    assert results[1]['deleted'] == 6
    assert keys(topo) == ['lockout:alice:10.0.0.1', 'ratelimit:other:x']


def test_scope_all_with_subject(capsys, topo):
    four_ways(capsys, gateway_ratelimit, scope='all', subject='10.0.0.1', **topo.connection())
    assert not [k for k in keys(topo) if k.endswith(':10.0.0.1') and k.startswith('ratelimit:')]
    four_ways(capsys, gateway_ratelimit, scope='all', subject='user-123', **topo.connection())
    assert 'ratelimit:user:user-123' not in keys(topo)


def test_max_keys_cap_refuses(capsys, topo):
    before = keys(topo)
    result = run(capsys, gateway_ratelimit, scope='all', confirm_all=True, max_keys=2, scan_count=1,
                 **topo.connection())
    assert result['failed'] and result['msg'].startswith('More than 2 rate-limit counters match')
    assert keys(topo) == before


def test_impose_four_ways(capsys, topo):
    results = four_ways(capsys, gateway_ratelimit, scope='auth', subject='203.0.113.7', state='present',
                        value=1000, ttl=300, **topo.connection())
    assert results[1]['set'] == 1 and results[3]['set'] == 0
    assert results[0]['diff']['before'] == {'ratelimit:auth:203.0.113.7': None}
    assert results[0]['diff']['after'] == {'ratelimit:auth:203.0.113.7': {'value': 1000, 'ttl': 300}}
    cli = ['-c'] if topo.kind == 'cluster' else []
    assert topo.primary.cli(*(cli + ['GET', 'ratelimit:auth:203.0.113.7'])).strip() == '1000'
    assert 0 < int(topo.primary.cli(*(cli + ['TTL', 'ratelimit:auth:203.0.113.7'])).strip()) <= 300


@pytest.mark.parametrize('args, message', [
    (dict(scope='nope'), "Unknown scope 'nope': choose one of auth, global, user or all"),
    (dict(scope='global', subject=['']), 'Empty subject'),
    (dict(scope='global', subject=[]), 'Empty subject list'),
    (dict(scope='global', subject=['10.0.0.*']), "Subject '10.0.0.*' is not an IP address"),
    (dict(scope='auth', subject=['1.2.3.4'], state='present', value=5, ttl=-1),
     'ttl must be a positive number of seconds (got -1).'),
    (dict(scope='auth', subject=['1.2.3.4'], state='present', ttl=60), 'state=present needs value'),
    (dict(scope='all', subject=['1.2.3.4'], state='present', value=5, ttl=60), 'state=present sets counters'),
    (dict(scope='global', subject=['1.2.3.4'], ttl=60), 'value and ttl only apply'),
    (dict(scope='global', batch_size=0), 'batch_size must be at least 1'),
])
def test_bad_input_is_one_line_and_changes_nothing(capsys, redis_standalone, args, message):
    load(redis_standalone)
    before = keys(redis_standalone)
    result = run(capsys, gateway_ratelimit, **dict(args, **redis_standalone.connection()))
    assert result['failed'] and message in result['msg'] and '\n' not in result['msg'], result
    assert keys(redis_standalone) == before


def test_info_top_and_totals(capsys, topo):
    info = run(capsys, gateway_ratelimit_info, top=2, **topo.connection())
    assert not info['changed'] and info['matched'] == 6
    assert info['top'][0] == {'subject': '10.0.0.1', 'count': 125, 'scopes': {'global': 120, 'auth': 5}}
    assert info['top'][1]['subject'] == '10.0.0.2'
    assert info['totals']['global'] == {'counters': 2, 'hits': 127}
    assert info['counters'][0]['key'] == 'ratelimit:global:10.0.0.1' and 0 < info['counters'][0]['ttl'] <= 600
    one = run(capsys, gateway_ratelimit_info, scope='user', subject='user*', check_mode=True, **topo.connection())
    assert [c['key'] for c in one['counters']] == ['ratelimit:user:user*']


def test_redis_down_then_rerun_completes(capsys, redis_fresh):
    load(redis_fresh)
    redis_fresh.primary.kill()
    result = run(capsys, gateway_ratelimit, scope='global', subject='10.0.0.1', **redis_fresh.connection())
    assert result['failed'] and result['msg'].startswith('Cannot connect to Redis') and '\n' not in result['msg']
    redis_fresh.primary.start()
    load(redis_fresh)
    rerun = run(capsys, gateway_ratelimit, scope='global', subject='10.0.0.1', **redis_fresh.connection())
    assert rerun['deleted'] == 1
