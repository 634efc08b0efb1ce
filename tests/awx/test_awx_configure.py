# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/awx_configure.yml without an AWX server: its inputs are refused with one line, and in check mode every
awx.awx task builds its arguments (surveys read, workflow and schedules templated) and then fails on the connection
with one line that carries no secret. What would happen on a real controller is not tested here (docs/awx.md)."""

import os

import pytest
import yaml

from tests.roles.conftest import REPO
from tests.roles.playbook_runner import ansible_playbook, free_port

PLAYBOOK = "playbooks/awx_configure.yml"
REDIS_SECRET = "Redis-S3cret-for-awx"
CONTROLLER_SECRET = "Ctrl-S3cret-for-awx"
SCM = "awx_project_scm_url=https://git.example.com/ops/apigw.git"


def failures(result):
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith(("fatal:", "failed:"))]


@pytest.mark.parametrize("args, message", [
    ([], "missing required arguments: awx_project_scm_url"),
    ([SCM, "awx_schedule_start=2026-01-01"], "awx_schedule_start a date YYYYMMDD (got 2026-01-01)"),
    ([SCM, "awx_config_hosts=awx-ops"], "No host of the inventory matches awx-ops (awx_config_hosts)"),
    ([SCM, "controller_validate_certs=maybe"], "controller_validate_certs"),
])
def test_bad_input_is_one_line(collection_root, base_dir, args, message):
    extra = [a for arg in args for a in ("-e", arg)]
    result = ansible_playbook(collection_root, PLAYBOOK, *extra, base_dir=base_dir)
    lines = failures(result)
    assert result.returncode != 0 and len(lines) == 1 and message in lines[0], result.stdout + result.stderr
    assert "TASK [Execution environment]" not in result.stdout


def _connection_env(how):
    port = free_port()  # nothing listens there
    if how == "variables":
        return {}, ["-e", f"controller_host=http://127.0.0.1:{port}", "-e", "controller_username=admin",
                    "-e", f"controller_password={CONTROLLER_SECRET}"]
    return {"CONTROLLER_HOST": f"http://127.0.0.1:{port}", "CONTROLLER_USERNAME": "admin",
            "CONTROLLER_PASSWORD": CONTROLLER_SECRET}, []


@pytest.mark.parametrize("how", ["variables", "environment"])
def test_check_mode_without_a_server_fails_on_the_connection_in_one_line(
        collection_root, base_dir, how, monkeypatch):
    env, args = _connection_env(how)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args += ["--check", "-e", SCM, "-e", f"awx_redis_password={REDIS_SECRET}"]
    result = ansible_playbook(collection_root, PLAYBOOK, *args, base_dir=base_dir)
    output = result.stdout + result.stderr
    lines = failures(result)
    assert result.returncode == 2, output
    # the inputs passed; the first awx.awx task reached for the controller and said why it could not, in one line
    assert len(lines) == 1 and "Failed to get token" in lines[0] and "Connection refused" in lines[0], output
    assert "TASK [Validate the inputs]" in output and "TASK [Execution environment]" in output
    # no secret, even with every module argument printed
    verbose = ansible_playbook(collection_root, PLAYBOOK, *args, "-vvv", "--diff", base_dir=base_dir)
    output = verbose.stdout + verbose.stderr
    assert verbose.returncode == 2 and "Connection refused" in output, output
    assert REDIS_SECRET not in output and CONTROLLER_SECRET not in output


class _Loader(yaml.SafeLoader):
    """Ansible's !unsafe (the credential type's injector template) read as a plain string."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _awx_tasks():
    with open(os.path.join(REPO, PLAYBOOK), encoding="utf-8") as f:
        plays = yaml.load(f, Loader=_Loader)
    # the tasks whose arguments are built (survey files, workflow nodes, rrules, the injector template); the others
    # take the inputs as they are, and the first of them is run by the test above
    built = ("A job template", "Workflow", "Schedules", "Credential")
    return [t["name"] for t in plays[1]["tasks"]
            if any(k.startswith("awx.awx.") for k in t) and t["name"].startswith(built)]


@pytest.mark.parametrize("task", _awx_tasks())
def test_every_awx_task_templates_its_arguments(collection_root, base_dir, task):
    """--start-at-task: each task's arguments (survey files, workflow nodes, rrules) are templated, so only the
    connection can fail; a templating error or a missing survey would fail differently."""
    args = _connection_env("variables")[1]
    result = ansible_playbook(collection_root, PLAYBOOK, "--check", "--start-at-task", task, "-e", SCM,
                              "-e", "awx_inventory_source_path=inventories/local/hosts.yml",
                              "-e", f"awx_redis_password={REDIS_SECRET}", *args, base_dir=base_dir)
    output = result.stdout + result.stderr
    assert f"TASK [{task}]" in output, output
    lines = failures(result)
    assert result.returncode == 2 and lines, output
    # a loop reports each item, then one summary line; the credential task is no_log (its arguments hold the
    # password), so its failure is censored
    expected = ("censored",) if "Credential \"" in task else ("Failed to get token", "One or more items failed")
    for line in lines:
        assert any(text in line for text in expected), output
    assert REDIS_SECRET not in output and CONTROLLER_SECRET not in output
