"""Every playbook refuses bad input and an inventory that gives one of its plays no host: it fails with one line
naming the input or the empty pattern, and nothing changed.

One table for all playbooks. Each row is (playbook, extra vars, expected message); every row runs against

- a real redis-server holding a fixed data set (its ``DEBUG DIGEST`` must be the same after the run), which the key
  playbooks are pointed at (apigw_redis_port / apigw_redis_password), so a refusal that came too late would show;
- a throw-away base directory (APIGW_BASE_DIR) that must not be created: nothing deployed, nothing half-written;
- free ports for the stack playbooks (nothing listens there, so nothing real is restarted or stopped).

"One line": exactly one ``fatal:``/``failed:`` line in the output, and it carries the message.

    python -m pytest tests/roles/test_playbook_inputs.py -q
"""

import glob
import os
import socket
import sys
from collections import namedtuple

import pytest

from tests.harness.redis_servers import start_password
from tests.roles.conftest import REPO
from tests.roles.playbook_runner import ansible_playbook, free_port, stack_ports

Row = namedtuple("Row", "playbook args message inventory")


def row(playbook, args, message, inventory="local"):
    return Row("playbooks/%s.yml" % playbook, list(args), message, inventory)


def no_hosts(playbook, *args, pattern, inventory="empty"):
    """The no-hosts case: the inventory (empty, or the local one with an override) gives a needed play no host."""
    return row(playbook, args, "No host of the inventory matches %s" % pattern, inventory)


# {port}/{password}: the live Redis; {base_dir}: APIGW_BASE_DIR; {busy_port}: a port something listens on
# (bound during the run); {free_port}: a port nothing listens on; {python}: this interpreter.
REDIS = ["apigw_redis_port={port}", "apigw_redis_password={password}"]
TABLE = [
    # awx_configure.yml (configures AWX itself; refused before any controller call)
    no_hosts(
        "awx_configure",
        "awx_project_scm_url=https://git.example.com/ops/apigw.git",
        "awx_config_hosts=controller",
        pattern="controller (awx_config_hosts)",
        inventory="local",
    ),
    row("awx_configure", [], "missing required arguments: awx_project_scm_url"),
    row(
        "awx_configure",
        ["awx_project_scm_url=https://git.example.com/ops/apigw.git", "awx_schedule_start=tomorrow"],
        "awx_schedule_start a date YYYYMMDD",
    ),
    # backup.yml
    no_hosts("backup", pattern="redis (inventory group)"),
    row(
        "backup",
        ["backup_action=later"],
        "value of backup_action must be one of: now, schedule, unschedule, got: later",
    ),
    row(
        "backup", ["backup_keep_days=week"], "argument 'backup_keep_days' is of type str and we were unable to convert"
    ),
    # clear_ratelimits.yml (and the shared Redis connection spec, roles/preflight)
    no_hosts(
        "clear_ratelimits",
        "ratelimit_scope=global",
        *REDIS,
        "apigw_ops_hosts=redis-ops",
        pattern="redis-ops (apigw_ops_hosts)",
        inventory="local",
    ),
    row("clear_ratelimits", REDIS, "missing required arguments: ratelimit_scope"),
    row(
        "clear_ratelimits",
        ["ratelimit_scope=global", "ratelimit_confirm_all=perhaps", *REDIS],
        "argument 'ratelimit_confirm_all' is of type str and we were unable to convert to bool",
    ),
    row(
        "clear_ratelimits",
        ["ratelimit_scope=global", "apigw_redis_mode=mesh", *REDIS],
        "value of apigw_redis_mode must be one of: standalone, cluster, sentinel, got: mesh",
    ),
    row(
        "clear_ratelimits",
        ["ratelimit_scope=global", "apigw_redis_port=99999", "apigw_redis_password={password}"],
        "apigw_redis_port must be between 1 and 65535 (got 99999). Nothing was changed.",
    ),
    row(
        "clear_ratelimits",
        ["ratelimit_scope=global", "apigw_redis_port=six", "apigw_redis_password={password}"],
        "argument 'apigw_redis_port' is of type str and we were unable to convert to int",
    ),
    row(
        "clear_ratelimits",
        ["ratelimit_scope=global", "apigw_redis_tls=sometimes", *REDIS],
        "argument 'apigw_redis_tls' is of type str and we were unable to convert to bool",
    ),
    row(
        "clear_ratelimits",
        ["ratelimit_scope=global", "apigw_redis_mode=sentinel", *REDIS],
        "apigw_redis_mode=sentinel needs apigw_redis_sentinel_hosts (a list of host:port). Nothing was changed.",
    ),
    row(
        "clear_ratelimits",
        ["ratelimit_scope=global", '{"apigw_redis_sentinel_hosts": ["127.0.0.1:26379"]}', *REDIS],
        "apigw_redis_sentinel_hosts is set but apigw_redis_mode is not sentinel",
    ),
    row(
        "clear_ratelimits",
        ["ratelimit_scope=global", "apigw_redis_ca_path=/etc/ssl/ca.pem", *REDIS],
        "apigw_redis_ca_path is set but apigw_redis_tls is false: set apigw_redis_tls=true to use it.",
    ),
    row(
        "clear_ratelimits",
        ["ratelimit_scope=global", "apigw_redis_url=redis://:{password}@127.0.0.1:{port}/0", *REDIS],
        "Give apigw_redis_url or apigw_redis_host/apigw_redis_port, not both. Nothing was changed.",
    ),
    row(
        "clear_ratelimits",
        ["ratelimit_scope=global", "apigw_redis_url=http://127.0.0.1:{port}/0"],
        "apigw_redis_url must start with redis://, rediss:// or unix:// (its value is not shown).",
    ),
    # demo.yml (no input of its own; the playbooks it imports validate theirs)
    no_hosts("demo", pattern="gateway (inventory group)"),
    # healthcheck.yml (its inputs are the gateway role's, checked by its verify entry point)
    no_hosts("healthcheck", pattern="gateway (inventory group)"),
    row(
        "healthcheck",
        ["gateway_runtime=mainframe"],  # the choices grow with the runtimes: only the start of the line is fixed
        "value of gateway_runtime must be one of: supervisor, systemd",
    ),
    # incident_bruteforce.yml
    no_hosts("incident_bruteforce", *REDIS, "apigw_ops_hosts=ops", pattern="ops (apigw_ops_hosts)", inventory="local"),
    no_hosts(
        "incident_bruteforce", *REDIS, "incident_audit_hosts=gw", pattern="gw (incident_audit_hosts)", inventory="local"
    ),
    row(
        "incident_bruteforce",
        ["incident_threshold=0", *REDIS],
        "incident_threshold must be 1 or more failures (got 0).",
    ),
    row("incident_bruteforce", ["incident_threshold=many", *REDIS], "argument 'incident_threshold' is of type str"),
    row(
        "incident_bruteforce",
        ["incident_block_ttl=0", *REDIS],
        "incident_block_ttl must be between 1 and 604800 seconds (got 0).",
    ),
    row(
        "incident_bruteforce",
        ["incident_block_ttl=9999999", *REDIS],
        "incident_block_ttl must be between 1 and 604800 seconds",
    ),
    row("incident_bruteforce", ["incident_top=0", *REDIS], "incident_top must be between 1 and 1000 (got 0)."),
    row("incident_bruteforce", ["incident_block_value=5", *REDIS], "incident_block_value must be 1000 or more"),
    row(
        "incident_bruteforce", ["incident_auth_max=0", *REDIS], "incident_auth_max must be between 1 and 1000 (got 0)."
    ),
    row("incident_bruteforce", ["incident_since=", *REDIS], "incident_since must be a time"),
    row(
        "incident_bruteforce",
        ["incident_events_limit=5000", *REDIS],
        "incident_events_limit must be between 0 and 1000 (got 5000).",
    ),
    row(
        "incident_bruteforce", ["incident_show_events=maybe", *REDIS], "argument 'incident_show_events' is of type str"
    ),
    row(
        "incident_bruteforce",
        ["apigw_redis_mode=mesh", *REDIS],
        "value of apigw_redis_mode must be one of: standalone, cluster, sentinel, got: mesh",
    ),
    # incident_ddos.yml
    no_hosts("incident_ddos", *REDIS, "apigw_ops_hosts=ops", pattern="ops (apigw_ops_hosts)", inventory="local"),
    row("incident_ddos", ["incident_threshold=-3", *REDIS], "incident_threshold must be 1 or more requests (got -3)."),
    row(
        "incident_ddos",
        ["incident_block_ttl=0", *REDIS],
        "incident_block_ttl must be between 1 and 604800 seconds (got 0).",
    ),
    row(
        "incident_ddos",
        ["incident_rate_limit_profile=aggressive", *REDIS],
        "value of incident_rate_limit_profile must be one of: strict, moderate, permissive, got: aggressive",
    ),
    row("incident_ddos", ["incident_top=5000", *REDIS], "incident_top must be between 1 and 1000 (got 5000)."),
    row("incident_ddos", ["incident_max_keys=-1", *REDIS], "incident_max_keys must be 0 (no cap) or more"),
    row(
        "incident_ddos",
        ["apigw_redis_port=0", "apigw_redis_password={password}"],
        "apigw_redis_port must be between 1 and 65535 (got 0).",
    ),
    # loadtest.yml (its own guard and the loadtest role's argument spec)
    no_hosts("loadtest", "loadtest_hosts=loadgen", pattern="loadgen (loadtest_hosts)", inventory="local"),
    row(
        "loadtest",
        ["loadtest_duration=long"],
        "argument 'loadtest_duration' is of type str and we were unable to convert",
    ),
    # maintenance.yml
    no_hosts(
        "maintenance",
        "maintenance_reason=CHG-1",
        *REDIS,
        "apigw_ops_hosts=ops",
        pattern="ops (apigw_ops_hosts)",
        inventory="local",
    ),
    row("maintenance", REDIS, "missing required arguments: maintenance_reason"),
    row(
        "maintenance",
        ["maintenance_reason=CHG-1", "maintenance_on_failure=panic", *REDIS],
        "value of maintenance_on_failure must be one of: keep, disable, got: panic",
    ),
    row("maintenance", ["maintenance_reason=' '", *REDIS], "maintenance_reason is empty"),
    row(
        "maintenance",
        ["maintenance_reason=CHG-1", "apigw_redis_mode=sentinel", *REDIS],
        "apigw_redis_mode=sentinel needs apigw_redis_sentinel_hosts",
    ),
    # monitoring.yml (the local inventory has no prometheus group)
    no_hosts("monitoring", pattern="prometheus (monitoring_hosts)", inventory="local"),
    row(
        "monitoring",
        ["monitoring_hosts=localhost", "monitoring_error_rate_threshold=five"],
        "argument 'monitoring_error_rate_threshold' is of type str and we were unable to convert to float",
    ),
    # restart.yml
    no_hosts("restart", pattern="gateway (inventory group)"),
    row("restart", ["restart_serial=all"], "restart_serial must be a number of hosts (1 or more) or a percentage"),
    # restore.yml
    no_hosts("restore", "restore_backup=dump-20260115", pattern="redis (inventory group)"),
    row("restore", [], "missing required arguments: restore_backup"),
    row("restore", ["restore_backup=' '"], "Refusing to restore without a backup"),
    row(
        "restore",
        ["restore_backup=dump-20260115", "restore_aof_handling=delete"],
        "value of restore_aof_handling must be one of: fail, disable_then_rewrite, ignore, got: delete",
    ),
    row(
        "restore",
        ["restore_backup=dump-19990101", "backup_python={python}"],
        "Backup directory {base_dir}/backup does not exist",
    ),
    # revoke_tokens.yml
    no_hosts(
        "revoke_tokens",
        "revoke_user_id=user-1",
        *REDIS,
        "apigw_ops_hosts=ops",
        pattern="ops (apigw_ops_hosts)",
        inventory="local",
    ),
    row("revoke_tokens", REDIS, "Give revoke_user_id (every live token of the user) or revoke_jtis"),
    row(
        "revoke_tokens",
        ["revoke_user_id=user-1", "revoke_refresh_lifetime=week", *REDIS],
        "argument 'revoke_refresh_lifetime' is of type str and we were unable to convert to int",
    ),
    # rotate_jwt_keys.yml
    no_hosts("rotate_jwt_keys", pattern="gateway (inventory group)"),
    row(
        "rotate_jwt_keys",
        ["jwt_rotation_phase=expire"],
        "value of jwt_rotation_phase must be one of: publish, rotate, retire, got: expire",
    ),
    row(
        "rotate_jwt_keys",
        ["jwt_rotation_phase=retire", "jwt_rotation_now=tomorrow"],
        "argument 'jwt_rotation_now' is of type str and we were unable to convert to int",
    ),
    row("rotate_jwt_keys", ["jwt_rotation_serial=0"], "jwt_rotation_serial must be a number of hosts"),
    # scale.yml (no input used to mean a full deploy)
    no_hosts("scale", "replicas=2", pattern="gateway (inventory group)"),
    row("scale", [], "Give replicas (gateway processes per host, 1 or more) or workers"),
    row("scale", ["replicas=0"], "replicas must be at least 1 and workers at least 0 (got replicas=0, workers=-)"),
    row("scale", ["replicas=two"], "argument 'replicas' is of type str and we were unable to convert to int"),
    row("scale", ["replicas=2", "scale_serial=-1"], "scale_serial must be a number of hosts"),
    # site.yml (its inputs are the redis and gateway roles')
    no_hosts("site", pattern="redis (inventory group); gateway (inventory group)"),
    row(
        "site",
        ["redis_runtime=mainframe"],
        "value of redis_runtime must be one of: supervisor, systemd",
    ),
    row("site", ["redis_port={busy_port}"], "Port {busy_port} on 127.0.0.1 is already in use by another process"),
    # teardown.yml
    no_hosts("teardown", pattern="gateway (inventory group); redis (inventory group)"),
    row("teardown", ["purge=maybe"], "argument 'purge' is of type str and we were unable to convert to bool"),
    # unlock_account.yml
    no_hosts(
        "unlock_account",
        "unlock_username=alice",
        *REDIS,
        "apigw_ops_hosts=ops",
        pattern="ops (apigw_ops_hosts)",
        inventory="local",
    ),
    row("unlock_account", REDIS, "missing required arguments: unlock_username"),
    row("unlock_account", ["unlock_username=' '", *REDIS], "unlock_username is empty"),
    row(
        "unlock_account",
        ["unlock_username=alice", "unlock_clear_failures=perhaps", *REDIS],
        "argument 'unlock_clear_failures' is of type str and we were unable to convert to bool",
    ),
    # update_config.yml
    no_hosts("update_config", "rate_limit_profile=strict", pattern="gateway (inventory group)"),
    row("update_config", [], "Give env (production.env variables to set"),
    row(
        "update_config",
        ["rate_limit_profile=aggressive"],
        "value of rate_limit_profile must be one of: strict, moderate, permissive, got: aggressive",
    ),
    row(
        "update_config",
        ["env=RATE_LIMIT_AUTH_MAX"],
        "argument 'env' is of type str and we were unable to convert to dict",
    ),
    row("update_config", ["rate_limit_profile=strict", "update_serial=0"], "update_serial must be a number of hosts"),
]

# The gateway role's own refusals (a test playbook that deploys only the gateway, as site.yml's second play)
GATEWAY_ONLY = "tests/roles/playbooks/gateway_only.yml"
ROLE_TABLE = [
    Row(
        GATEWAY_ONLY,
        ["gateway_runtime=mainframe"],  # the choices grow with the runtimes: only the start of the line is fixed
        "value of gateway_runtime must be one of: supervisor, systemd",
        "local",
    ),
    Row(
        GATEWAY_ONLY,
        ["gateway_rate_limit_profile=aggressive"],
        "value of gateway_rate_limit_profile must be one of: strict, moderate, permissive, got: aggressive",
        "local",
    ),
    Row(
        GATEWAY_ONLY,
        ["gateway_port={busy_port}"],
        "Port {busy_port} on 127.0.0.1 is already in use by another process",
        "local",
    ),
    Row(
        GATEWAY_ONLY,
        ["gateway_jwt_private_key=/nonexistent/jwt.pem"],
        "JWT private key /nonexistent/jwt.pem (gateway_jwt_private_key) does not exist",
        "local",
    ),
    Row(
        GATEWAY_ONLY,
        ["gateway_jwt_key_generate=false"],
        "keyset.json missing) and gateway_jwt_key_generate is false",
        "local",
    ),
    Row(
        GATEWAY_ONLY,
        ["gateway_redis_port={free_port}"],
        "Cannot reach Redis at 127.0.0.1:{free_port} (nothing listens there)",
        "local",
    ),
]


def row_id(entry):
    return "%s[%s]" % (os.path.basename(entry.playbook), " ".join(entry.args) or "no input")


def test_every_playbook_is_in_the_table():
    """A new playbook must get its rows: at least its no-hosts case and one bad input (demo.yml has no input)."""
    playbooks = sorted("playbooks/" + os.path.basename(p) for p in glob.glob(os.path.join(REPO, "playbooks", "*.yml")))
    no_host_rows = {entry.playbook for entry in TABLE if entry.message.startswith("No host of the inventory matches")}
    input_rows = {entry.playbook for entry in TABLE if not entry.message.startswith("No host of the inventory matches")}
    assert [p for p in playbooks if p not in no_host_rows] == []
    assert [p for p in playbooks if p not in input_rows] == ["playbooks/demo.yml"]


@pytest.fixture(scope="module")
def redis():
    """A real Redis with the gateway's keys in it; DEBUG DIGEST tells whether anything was written."""
    server = start_password(extra_config={"enable-debug-command": "local"})
    server.cli("SET", "ratelimit:global:10.0.0.1", "7", "EX", "3600")
    server.cli("SET", "ratelimit:auth:10.0.0.2", "3", "EX", "3600")
    server.cli("SET", "ratelimit:user:user-1", "9", "EX", "3600")
    server.cli("SET", "lockout:alice:10.0.0.1", "1", "EX", "3600")
    server.cli("SET", "loginfail:alice:10.0.0.1", "5", "EX", "3600")
    server.cli("HSET", "token:user:user-1", "jti-0000000001", "4102444800")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def empty_inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("inventory") / "empty.yml"
    path.write_text("all: {}\n")
    return str(path)


def fill(text, values):
    for name, value in values.items():
        text = text.replace("{%s}" % name, str(value))
    return text


def run_refused(collection_root, entry, redis, base_dir, empty_inventory):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        values = dict(
            port=redis.port,
            password=redis.password,
            base_dir=base_dir,
            busy_port=busy.getsockname()[1],
            free_port=free_port(),
            python=sys.executable,
        )
        extra = []
        for arg in entry.args:
            extra += ["-e", fill(arg, values)]
        before = redis.cli("DEBUG", "DIGEST").strip()
        result = ansible_playbook(
            collection_root,
            entry.playbook,
            *stack_ports(),
            *extra,
            base_dir=base_dir,
            inventory=empty_inventory if entry.inventory == "empty" else None,
        )
    output = result.stdout + result.stderr
    message = fill(entry.message, values)
    assert result.returncode != 0, output
    failures = [line for line in output.splitlines() if line.startswith(("fatal:", "failed:"))]
    assert len(failures) == 1 and message in failures[0], output
    assert redis.cli("DEBUG", "DIGEST").strip() == before, "Redis changed: " + output
    assert not os.path.exists(base_dir), f"{base_dir} was created: something was half-deployed\n" + output
    return output


@pytest.mark.parametrize("entry", TABLE, ids=row_id)
def test_playbook_refuses(collection_root, redis, base_dir, empty_inventory, entry):
    if entry.playbook == "playbooks/loadtest.yml" and not os.path.exists(os.path.join(REPO, entry.playbook)):
        pytest.fail("playbooks/loadtest.yml is in the table but not in the checkout")
    output = run_refused(collection_root, entry, redis, base_dir, empty_inventory)
    if entry.playbook == "playbooks/restore.yml":
        # the backup is found and verified before anything is stopped
        assert "TASK [1. Stop the gateway" not in output and "TASK [2. Stop Redis" not in output, output


@pytest.mark.parametrize("entry", ROLE_TABLE, ids=row_id)
def test_gateway_role_refuses(collection_root, redis, base_dir, empty_inventory, entry):
    run_refused(collection_root, entry, redis, base_dir, empty_inventory)
