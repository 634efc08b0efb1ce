# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""redis_backup / redis_backup_info run through main() against real redis-server processes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.apigw.ops.plugins.module_utils import backup_catalog, redis_conf
from ansible_collections.apigw.ops.plugins.modules import redis_backup, redis_backup_info
from ansible_collections.apigw.ops.tests.harness import redis_servers


def read_bytes(path):
    with open(str(path), 'rb') as handle:
        return handle.read()


def write_bytes(path, data):
    with open(str(path), 'wb') as handle:
        handle.write(data)


def read_json(path):
    with open(str(path)) as handle:
        return json.load(handle)


def run(capsys, module=redis_backup, check_mode=False, diff=False, **args):
    if check_mode:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    out = capsys.readouterr().out
    return json.loads(out)


def four_ways(capsys, **args):
    """check -> apply -> check -> apply."""
    return [run(capsys, check_mode=check, diff=True, **args) for check in (True, False, True, False)]


def load_dataset(server, ttl=3600):
    """Runbook key shapes: counters with TTL, lockout flags, blacklisted jtis, token hashes, a set."""
    cmds = []
    for i in range(50):
        cmds.append(['SET', 'ratelimit:global:10.0.0.%d' % i, str(i), 'EX', str(ttl)])
        cmds.append(['SET', 'token:blacklist:jti-%d' % i, '1', 'EX', str(ttl * 2)])
        cmds.append(['HSET', 'token:user:%d' % i, 'jti-a-%d' % i, '1736937000', 'jti-b-%d' % i, '1736937600'])
    cmds.append(['SET', 'lockout:alice:10.0.0.1', '1'])
    cmds.append(['HSET', 'gateway:maintenance', 'enabled', 'false', 'retry_after', '300', 'message', 'héllo'])
    cmds.append(['SADD', 'admins', 'alice', 'bob', 'carol'])
    for cmd in cmds:
        server.cli(*cmd)


def snapshot_keys(client):
    """{key: (type, value, ttl)} of the whole db."""
    out = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        value = {'string': client.get, 'hash': client.hgetall, 'set': client.smembers}[kind](key)
        out[key] = (kind, value, client.ttl(key))
    return out


def same_data(before, after, tolerance=30):
    assert set(before) == set(after)
    for key, (kind, value, ttl) in before.items():
        assert after[key][0] == kind and after[key][1] == value, key
        if ttl < 0:
            assert after[key][2] == ttl, key
        else:
            assert 0 < after[key][2] <= ttl and ttl - after[key][2] <= tolerance, key


def client_of(topo):
    import redis
    info = topo.connection()
    info.pop('mode', None)
    kwargs = dict(decode_responses=True)
    if info.get('tls'):
        kwargs.update(ssl=True, ssl_ca_certs=info.pop('ca_path'), ssl_certfile=info.pop('client_cert'),
                      ssl_keyfile=info.pop('client_key'))
        info.pop('tls')
    return redis.Redis(**dict(info, **kwargs))


def mount_tmpfs(path, options):
    os.makedirs(path, exist_ok=True)
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', path],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip('cannot mount a tmpfs here (%s): needs root / CAP_SYS_ADMIN' % proc.stderr.strip())
    return path


def umount(path):
    subprocess.run(['umount', path], capture_output=True, check=False)


# -- create ------------------------------------------------------------------------------------

@pytest.mark.parametrize('method', ['bgsave', 'replication', 'auto'])
def test_create_four_ways(redis_standalone, tmp_path, capsys, method):
    load_dataset(redis_standalone.primary)
    args = dict(redis_standalone.connection(), path=str(tmp_path), name='daily', method=method)
    check1, apply1, check2, apply2 = four_ways(capsys, **args)
    assert check1['changed'] and check1['created'] and apply1['changed'] and apply1['created']
    assert not check2['changed'] and not apply2['changed'] and not apply2['created']
    assert check1['diff']['after']['backups'] == ['daily'] and check1['diff']['before']['backups'] == []
    assert sorted(os.listdir(str(tmp_path))) == ['daily.manifest.json', 'daily.rdb']
    manifest = read_json(tmp_path / 'daily.manifest.json')
    assert manifest['method'] == ('bgsave' if method == 'auto' else method)
    assert manifest['keys'] == {'db0': {'keys': 153, 'expires': 100}} and manifest['keys_in_file'] == 153
    assert manifest['checks'] == {'magic': 'ok', 'crc64': 'ok', 'redis_check_rdb': 'ok'}
    assert manifest['source']['port'] == redis_standalone.primary.port and manifest['source']['role'] == 'master'
    assert manifest['rdb_version'] == 10 and manifest['verified'] and manifest['size'] > 1000
    assert oct(os.stat(str(tmp_path / 'daily.rdb')).st_mode & 0o777) == '0o600'
    proc = subprocess.run(['redis-check-rdb', str(tmp_path / 'daily.rdb')], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and '153 keys read' in proc.stdout


@pytest.mark.parametrize('kind', ['redis_password', 'redis_acl', 'redis_tls'])
def test_replication_with_auth_and_tls(request, tmp_path, capsys, kind):
    topo = request.getfixturevalue(kind)
    topo.primary.cli('SET', 'k-%s' % kind, 'v')
    res = run(capsys, path=str(tmp_path), name='x', method='replication', **topo.connection())
    assert res['changed'] and res['manifests'][0]['keys_in_file'] >= 1, res
    assert 'acl-Pass-1' not in json.dumps(res) and 's3cret-Pass' not in json.dumps(res)


def test_cluster_one_file_per_primary_with_slots(redis_cluster, tmp_path, capsys):
    client = client_of(redis_cluster)
    del client
    for node in redis_cluster.servers:
        node.cli('SET', 'k{%d}' % node.port, 'v')  # lands wherever; -c not used: may be refused, ignore
    check1, apply1, check2, apply2 = four_ways(capsys, path=str(tmp_path), name='c', method='replication',
                                               **redis_cluster.connection())
    assert 'msg' not in apply1, apply1['msg']
    assert check1['changed'] and apply1['changed'] and not check2['changed'] and not apply2['changed']
    manifests = apply1['manifests']
    assert len(manifests) == 3 and all(m['files_in_backup'] == 3 for m in manifests)
    slots = sorted(r for m in manifests for r in m['slots'])
    assert slots[0][0] == 0 and slots[-1][1] == 16383
    assert sum(r[1] - r[0] + 1 for r in slots) == 16384
    assert len([n for n in os.listdir(str(tmp_path)) if n.endswith('.rdb')]) == 3
    info = run(capsys, module=redis_backup_info, path=str(tmp_path), reverify=True)
    assert info['backups'][0]['verified'] and len(info['backups'][0]['files']) == 3


@pytest.mark.parametrize('args, text', [
    (dict(password='wrong'), 'Authentication to Redis at'),
    (dict(port=1), 'Cannot connect to Redis at 127.0.0.1:1'),
    (dict(name='a/b'), "Invalid backup name 'a/b'"),
    (dict(keep_min=0), 'keep_min >= 1'),
])
def test_bad_input_one_line(redis_password, tmp_path, capsys, args, text):
    params = dict(redis_password.connection(), path=str(tmp_path))
    params.update(args)
    res = run(capsys, **params)
    assert res['failed'] and text in res['msg'] and '\n' not in res['msg'], res['msg']
    assert 'wrong' not in res['msg'] and os.listdir(str(tmp_path)) == []


def test_invalid_backup_of_same_name_is_replaced(redis_standalone, tmp_path, capsys):
    redis_standalone.primary.cli('SET', 'a', '1')
    args = dict(redis_standalone.connection(), path=str(tmp_path), name='daily')
    run(capsys, **args)
    path = str(tmp_path / 'daily.rdb')
    data = bytearray(read_bytes(path))
    data[20] ^= 0x40
    write_bytes(path, bytes(data))
    check = run(capsys, check_mode=True, **args)
    assert check['changed'] and 'sha256 differs' in check['replaced_invalid'][0]
    res = run(capsys, **args)
    assert res['changed'] and res['created']
    assert run(capsys, module=redis_backup_info, path=str(tmp_path), reverify=True)['backups'][0]['verified']


@pytest.mark.parametrize('occupant', ['rdb', 'manifest', 'symlink'])
def test_a_foreign_file_of_the_same_name_is_never_overwritten(redis_standalone, tmp_path, capsys, occupant):
    """A backup whose file name is taken by a file we did not write is refused (check mode too); nothing changes."""
    victim = tmp_path / 'victim'
    victim.write_text('not ours')
    name = {'rdb': 'daily.rdb', 'manifest': 'daily.manifest.json', 'symlink': 'daily.rdb'}[occupant]
    if occupant == 'symlink':
        os.symlink(str(victim), str(tmp_path / name))
    else:
        (tmp_path / name).write_text('{"name": "daily", "file": "daily.rdb"}')
    before = sorted(os.listdir(str(tmp_path)))
    args = dict(redis_standalone.connection(), path=str(tmp_path), name='daily')
    for check_mode in (True, False):
        res = run(capsys, check_mode=check_mode, **args)
        assert res['failed'] and 'Refusing to overwrite %s' % name in res['msg'] and '\n' not in res['msg']
    assert sorted(os.listdir(str(tmp_path))) == before and victim.read_text() == 'not ours'


# -- faults ------------------------------------------------------------------------------------

def test_backup_dir_under_a_file(redis_standalone, tmp_path, capsys):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    res = run(capsys, path=str(blocker / 'sub'), **redis_standalone.connection())
    assert res['failed'] and 'does not exist (or is not a directory)' in res['msg'] and '\n' not in res['msg']


def test_backup_dir_read_only_mount(redis_standalone, tmp_path, capsys):
    path = mount_tmpfs(str(tmp_path / 'ro'), 'size=1m,ro')
    try:
        res = run(capsys, path=path, **redis_standalone.connection())
        assert res['failed'] and 'is not writable' in res['msg'] and '\n' not in res['msg'], res['msg']
        assert os.listdir(path) == []
    finally:
        umount(path)


@pytest.mark.parametrize('method', ['bgsave', 'replication'])
def test_full_filesystem_leaves_nothing(redis_standalone, tmp_path, capsys, method):
    client = client_of(redis_standalone)
    pipe = client.pipeline(transaction=False)
    for i in range(2000):
        pipe.set('full:%d' % i, os.urandom(100).hex())  # incompressible: the RDB is ~450 kB
    pipe.execute()
    path = mount_tmpfs(str(tmp_path / 'small'), 'size=64k')
    try:
        res = run(capsys, path=path, method=method, **redis_standalone.connection())
        assert res['failed'] and 'No space left on device' in res['msg'] and '\n' not in res['msg'], res['msg']
        assert 'No backup file was left behind' in res['msg']
        assert os.listdir(path) == []
    finally:
        umount(path)


def test_bgsave_failure_is_reported(tmp_path, capsys):
    # dir is a protected config in Redis 7: this server allows CONFIG SET dir, to a read-only mount
    server = redis_servers.RedisServer(extra_config={'enable-protected-configs': 'yes'}).start()
    ro = mount_tmpfs(str(tmp_path / 'server-ro'), 'size=1m,ro')
    try:
        server.cli('SET', 'a', '1')
        assert server.cli('CONFIG', 'SET', 'dir', ro).strip() == 'OK'
        dest = tmp_path / 'backups'
        dest.mkdir()
        os.symlink(ro, str(tmp_path / 'unused'))
        res = run(capsys, path=str(dest), method='bgsave', host=server.host, port=server.port)
        assert res.get('failed'), res
        assert 'BGSAVE failed on' in res['msg'] and 'rdb_last_bgsave_status:err' in res['msg']
        assert '\n' not in res['msg'] and os.listdir(str(dest)) == []
    finally:
        server.stop()
        umount(ro)


def test_redis_dies_during_transfer(redis_fresh, tmp_path, capsys):
    server = redis_fresh.primary
    for i in range(300):
        server.cli('SET', 'k:%d' % i, 'v' * 100)
    # a slow fork child (1 ms a key) and no diskless delay: the transfer is in flight when we kill
    server.cli('CONFIG', 'SET', 'rdb-key-save-delay', '10000')
    server.cli('CONFIG', 'SET', 'repl-diskless-sync-delay', '0')
    pid = server.pid

    def killer():
        while 'rdb_bgsave_in_progress:1' not in server.cli('INFO', 'persistence', check=False):
            time.sleep(0.02)
        time.sleep(0.3)
        os.killpg(pid, signal.SIGKILL)

    thread = threading.Thread(target=killer)
    thread.start()
    res = run(capsys, path=str(tmp_path), method='replication', **redis_fresh.connection())
    thread.join()
    server.process.wait()
    server.pid = None
    assert res['failed'] and '\n' not in res['msg'], res
    assert 'closed the connection' in res['msg'] or 'Connection' in res['msg'] or 'reset' in res['msg'], res['msg']
    assert os.listdir(str(tmp_path)) == []


# -- retention ---------------------------------------------------------------------------------

def _age_backup(directory, name, days):
    manifest_path = os.path.join(directory, name + '.manifest.json')
    manifest = read_json(manifest_path)
    manifest['created_epoch'] -= int(days * 86400)
    write_bytes(manifest_path, json.dumps(manifest).encode())


def test_retention_never_deletes_last_verified(redis_standalone, tmp_path, capsys):
    redis_standalone.primary.cli('SET', 'a', '1')
    conn = redis_standalone.connection()
    for index, name in enumerate(['b1', 'b2', 'b3', 'b4']):
        run(capsys, path=str(tmp_path), name=name, prune=False, **conn)
        _age_backup(str(tmp_path), name, 30 - index)
    # b4 (the newest) is corrupt: it does not count as a good backup
    with open(str(tmp_path / 'b4.rdb'), 'r+b') as handle:
        handle.truncate(50)
    check1, apply1, check2, apply2 = [run(capsys, check_mode=c, state='pruned', path=str(tmp_path),
                                          keep_days=7, keep_min=1) for c in (True, False, True, False)]
    assert check1['changed'] and apply1['changed'] and not check2['changed'] and not apply2['changed']
    assert apply1['deleted'] == ['b1', 'b2', 'b4'] and apply1['kept'] == ['b3']
    assert sorted(os.listdir(str(tmp_path))) == ['b3.manifest.json', 'b3.rdb']
    # keep_days=0 still keeps the newest verified one
    res = run(capsys, state='pruned', path=str(tmp_path), keep_days=0, keep_min=1)
    assert not res['changed'] and res['kept'] == ['b3']


def test_present_prunes_after_new_backup_keep_min(redis_standalone, tmp_path, capsys):
    redis_standalone.primary.cli('SET', 'a', '1')
    conn = redis_standalone.connection()
    for index, name in enumerate(['o1', 'o2', 'o3']):
        run(capsys, path=str(tmp_path), name=name, prune=False, **conn)
        _age_backup(str(tmp_path), name, 20 - index)
    (tmp_path / 'dump-20200101.rdb').write_bytes(b'not ours')
    check = run(capsys, check_mode=True, path=str(tmp_path), name='new', keep_min=2, **conn)
    assert check['changed'] and check['deleted'] == ['o1', 'o2'] and len(os.listdir(str(tmp_path))) == 7
    res = run(capsys, path=str(tmp_path), name='new', keep_min=2, **conn)
    assert res['deleted'] == ['o1', 'o2'] and sorted(res['kept']) == ['new', 'o3']
    info = run(capsys, module=redis_backup_info, path=str(tmp_path))
    assert [b['name'] for b in info['backups']] == ['o3', 'new'] and info['unmanaged'] == ['dump-20200101.rdb']
    assert info['latest_verified'] == 'new' and info['backups'][0]['age_days'] >= 17


# -- restore -----------------------------------------------------------------------------------

def _restore_round_trip(topo, tmp_path, capsys, aof):
    server = topo.primary
    load_dataset(server)
    client = client_of(topo)
    before = snapshot_keys(client)
    backups = str(tmp_path / 'backups')
    os.mkdir(backups)
    res = run(capsys, path=backups, name='rt', **topo.connection())
    assert res['changed']
    client.flushall()
    client.set('written-after-backup', '1')
    client.save()  # the dump on disk now holds the state we want to undo
    server.stop(remove=False)
    dump = os.path.join(server.dir, 'dump.rdb')
    args = dict(state='restored', path=backups, config_file=server.config_path)
    if aof:
        refused = run(capsys, **args)
        assert refused['failed'] and 'AOF is enabled in' in refused['msg'] and '\n' not in refused['msg']
        args['aof_handling'] = 'disable_then_rewrite'
    check1, apply1, check2, apply2 = four_ways(capsys, **args)
    assert check1['changed'] and apply1['changed'] and not check2['changed'] and not apply2['changed'], apply2
    assert apply1['checks']['crc64'] == 'ok' and apply1['previous_dump'] and os.path.exists(apply1['previous_dump'])
    assert apply1['aof_enabled'] is aof and apply1['aof_disabled_for_restore'] is aof
    assert backup_catalog.sha256_file(dump) == apply1['sha256']
    server.start(write_config=False)
    client = client_of(topo)
    same_data(before, snapshot_keys(client))
    if aof:
        assert client.config_get('appendonly')['appendonly'] == 'no'
        step2 = [run(capsys, check_mode=c, state='aof_enabled', path=backups, config_file=server.config_path,
                     **topo.connection()) for c in (True, False, True, False)]
        assert step2[0]['changed'] and step2[1]['changed'] and not step2[2]['changed'] and not step2[3]['changed']
        assert step2[1]['aof_rewrite_status'] == 'ok'
        assert redis_conf.AOF_MARKER.encode() not in read_bytes(server.config_path)
        server.stop(remove=False)
        os.unlink(dump)  # prove the data now comes from the AOF
        server.start(write_config=False)
        client = client_of(topo)
        assert client.config_get('appendonly')['appendonly'] == 'yes'
        same_data(before, snapshot_keys(client))


def test_restore_round_trip(redis_fresh, tmp_path, capsys):
    _restore_round_trip(redis_fresh, tmp_path, capsys, aof=False)


def test_restore_round_trip_with_aof(tmp_path, capsys):
    server = redis_servers.RedisServer(extra_config={'appendonly': 'yes'}).start()
    try:
        _restore_round_trip(redis_servers.Topology('standalone', [server]), tmp_path, capsys, aof=True)
    finally:
        server.stop()


@pytest.mark.parametrize('damage', ['truncate', 'flip'])
def test_corrupt_backup_refused_for_restore(redis_fresh, tmp_path, capsys, damage):
    server = redis_fresh.primary
    load_dataset(server)
    backups = str(tmp_path)
    run(capsys, path=backups, name='good', **redis_fresh.connection())
    server.cli('SET', 'current', 'data')
    server.stop(remove=False)
    dump = os.path.join(server.dir, 'dump.rdb')
    server.start()
    server.cli('SET', 'current', 'data')
    server.cli('SAVE')
    server.stop(remove=False)
    current = read_bytes(dump)
    bad = os.path.join(backups, 'bad.rdb')
    data = bytearray(read_bytes(os.path.join(backups, 'good.rdb')))
    if damage == 'truncate':
        data = data[:len(data) - 100]
    else:
        data[len(data) // 2] ^= 0x01
    write_bytes(bad, bytes(data))
    for check in (True, False):
        res = run(capsys, check_mode=check, state='restored', path=backups, backup=bad, config_file=server.config_path)
        assert res['failed'] and 'failed verification' in res['msg'] and 'current data is untouched' in res['msg']
        assert '\n' not in res['msg']
    assert read_bytes(dump) == current and sorted(os.listdir(server.dir)).count('dump.rdb') == 1
    assert not [n for n in os.listdir(server.dir) if n.endswith('~')]


def test_restore_refused_while_running(redis_fresh, tmp_path, capsys):
    run(capsys, path=str(tmp_path), name='b', **redis_fresh.connection())
    res = run(capsys, state='restored', path=str(tmp_path), config_file=redis_fresh.primary.config_path)
    assert res['failed'] and 'looks running' in res['msg'] and '\n' not in res['msg']


def test_info_missing_dir(tmp_path, capsys):
    res = run(capsys, module=redis_backup_info, path=str(tmp_path / 'nope'))
    assert res['failed'] and 'does not exist' in res['msg']
    shutil.rmtree(str(tmp_path), ignore_errors=True)
