# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""gateway_token and gateway_token_info through main(), against real redis-server processes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.apigw.ops.plugins.modules import gateway_token, gateway_token_info


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


def cli(topo, *args):
    return topo.primary.cli(*((['-c'] if topo.kind == 'cluster' else []) + list(args))).strip()


def ttl(topo, jti):
    return int(cli(topo, 'TTL', 'token:blacklist:' + jti))


@pytest.fixture(params=['standalone', 'cluster'])
def topo(request, redis_standalone, redis_cluster_topology):
    topo = redis_standalone if request.param == 'standalone' else redis_cluster_topology
    for server in topo.servers:
        server.cli('FLUSHALL')
    now = int(time.time())
    cli(topo, 'HSET', 'token:user:user-123', 'live-token-1', now + 3600, 'live-token-2', now + 10 * 86400,
        'expired-token', now - 10)
    return topo


def test_revoke_all_of_user(capsys, topo):
    results = four_ways(capsys, gateway_token, user_id='user-123', **topo.connection())
    assert results[0]['revoked'] == results[1]['revoked'] == ['live-token-1', 'live-token-2']
    assert results[1]['expired'] == ['expired-token'] and results[1]['verified'] is True
    assert results[3]['already_revoked'] == ['live-token-1', 'live-token-2']
    assert results[1]['diff'] == {'before': {'revoked': []}, 'after': {'revoked': ['live-token-1', 'live-token-2']}}
    assert 3590 <= ttl(topo, 'live-token-1') <= 3600
    assert 604790 <= ttl(topo, 'live-token-2') <= 604800  # capped at the refresh lifetime
    assert cli(topo, 'GET', 'token:blacklist:live-token-1') == '1'
    assert cli(topo, 'EXISTS', 'token:blacklist:expired-token') == '0'
    info = run(capsys, gateway_token_info, user_id='user-123', **topo.connection())
    assert [(t['jti'], t['revoked'], t['expired']) for t in info['tokens']] == [
        ('expired-token', False, True), ('live-token-1', True, False), ('live-token-2', True, False)]
    assert info['live_not_revoked'] == 0


def test_bare_jti_gets_the_cap_and_unrevoke(capsys, topo):
    four_ways(capsys, gateway_token, jti=['bare.jti_~-1234'], refresh_lifetime=1000, **topo.connection())
    assert 990 <= ttl(topo, 'bare.jti_~-1234') <= 1000
    refused = run(capsys, gateway_token, jti=['bare.jti_~-1234'], state='absent', **topo.connection())
    assert refused['failed'] and refused['msg'].startswith('Refusing to un-revoke tokens')
    results = four_ways(capsys, gateway_token, jti=['bare.jti_~-1234'], state='absent', allow_unrevoke=True,
                        **topo.connection())
    assert results[1]['unrevoked'] == ['bare.jti_~-1234'] and results[3]['not_revoked'] == ['bare.jti_~-1234']
    assert cli(topo, 'EXISTS', 'token:blacklist:bare.jti_~-1234') == '0'


def test_jti_of_user_uses_its_expiry(capsys, topo):
    four_ways(capsys, gateway_token, user_id='user-123', jti='live-token-1', **topo.connection())
    assert 3590 <= ttl(topo, 'live-token-1') <= 3600
    assert cli(topo, 'EXISTS', 'token:blacklist:live-token-2') == '0'


def test_many_tokens_one_round_trip(capsys, topo):
    now = int(time.time())
    args = ['HSET', 'token:user:bulk']
    for number in range(1000):
        args += ['jti-%06d' % number, now + 600]
    cli(topo, *args)
    results = four_ways(capsys, gateway_token, user_id='bulk', **topo.connection())
    assert len(results[1]['revoked']) == 1000
    info = run(capsys, gateway_token_info, user_id='bulk', **topo.connection())
    assert info['count'] == 1000 and all(t['revoked'] for t in info['tokens'])


@pytest.mark.parametrize('args, message', [
    (dict(jti=['short']), "jti 'short' is not a token id"),
    (dict(jti=['a*b*c*d*e*f']), "is not a token id"),
    (dict(jti=[]), 'Empty jti list'),
    (dict(user_id=''), 'Empty user_id'),
    (dict(), 'Give jti'),
    (dict(jti=['abcdefgh1'], refresh_lifetime=-1), 'refresh_lifetime must be a positive number'),
])
def test_bad_input(capsys, redis_standalone, args, message):
    result = run(capsys, gateway_token, **dict(args, **redis_standalone.connection()))
    assert result['failed'] and message in result['msg'] and '\n' not in result['msg'], result
    assert redis_standalone.primary.cli('DBSIZE').strip() == '0'
