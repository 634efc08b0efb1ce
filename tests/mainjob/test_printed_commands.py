"""README command 1 as a newcomer runs it, and every command its summary prints, verbatim.

scripts/main-job.sh deploys the local stack and ends with an "operate" block: an activation line and
commands to paste into a new shell from the repository root.  This test runs the main job, then each of
those lines exactly as printed, in a new shell that has only what a user's login shell has (HOME, PATH
and the documented APIGW_* variables: a base directory and ports of its own, so that a main-job stack
already running, the README's command 1 run before command 2, is left alone), and tears it down.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORT_VARIABLES = ("APIGW_GATEWAY_PORT", "APIGW_REDIS_PORT", "APIGW_UPSTREAM_PORT")


def free_ports(count):
    """Ports nothing listens on now (held open together, so they differ), for a stack of this test's own."""
    sockets = [socket.socket() for _port in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


PORTS = dict(zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES))))
LOGIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def login_env(base):
    return {"HOME": os.environ.get("HOME", "/root"), "PATH": LOGIN_PATH, "APIGW_BASE_DIR": base, "LANG": "C.UTF-8",
            "ANSIBLE_NOCOLOR": "1", **{name: str(port) for name, port in PORTS.items()}}


def printed_commands(output):
    """The lines of the "operate" block: indented by four spaces, after the line that starts the block."""
    lines = ANSI.sub("", output).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("operate"))
    commands = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        commands.append(line.strip())
    return commands


@pytest.fixture(scope="module")
def main_job():
    base = tempfile.mkdtemp(prefix="apigw-mainjob-")
    env = login_env(base)
    try:
        run = subprocess.run(["scripts/main-job.sh"], cwd=REPO, env=env, capture_output=True, text=True, check=False)
        assert run.returncode == 0, f"main-job.sh failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
        yield run.stdout, env
    finally:
        subprocess.run(["scripts/main-job.sh", "--teardown"], cwd=REPO, env=env, capture_output=True, text=True,
                       check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_summary_prints_an_activation_line_and_playbooks(main_job):
    commands = printed_commands(main_job[0])
    assert commands[0] == "source .venv/bin/activate"
    assert sum(c.startswith("ansible-playbook playbooks/") for c in commands) >= 4
    assert not [c for c in commands if "{" in c and "}" in c and "-e" not in c], "brace lists are not one command"


def test_every_printed_command_runs_verbatim_in_a_new_shell(main_job):
    output, env = main_job
    activation, *commands = printed_commands(output)
    failures = []
    for command in commands:
        run = subprocess.run(["bash", "-c", f"{activation} && {command}"], cwd=REPO, env=env,
                             capture_output=True, text=True, check=False)
        if run.returncode != 0:
            failures.append(f"{command!r} exited {run.returncode}: {(run.stdout + run.stderr)[-800:]}")
    assert not failures, "\n".join(failures)


def test_readme_commands_exist():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    for script in re.findall(r"^(scripts/[\w.-]+\.sh)\b", readme, re.M):
        assert os.access(os.path.join(REPO, script), os.X_OK), script
