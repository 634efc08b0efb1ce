# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a playbook as AWX does: `ansible-runner run` on a private data directory (env/extravars, env/envvars,
inventory/, project/), optionally with process isolation in the execution environment image, and read back what AWX
reads: the exit status, the status, the `stats` of the playbook_on_stats event and the job events."""

import json
import os
import shutil
import subprocess
import sys
from collections import namedtuple

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SURVEYS = os.path.join(REPO, "extensions", "awx", "surveys")
BIN = os.path.dirname(sys.executable)

Job = namedtuple("Job", "rc status stats events stdout")


def survey_extravars(playbook, answers=None):
    """The extra vars AWX sends for a launch that accepts every default of the survey, plus ``answers`` (the
    required questions that have no default). Questions without a default are not sent, as in AWX."""
    with open(os.path.join(SURVEYS, playbook + ".json"), encoding="utf-8") as f:
        spec = json.load(f)["spec"]
    extra = {}
    for q in spec:
        if q["default"] == "" or q["type"] == "password":
            continue
        extra[q["variable"]] = int(q["default"]) if q["type"] == "integer" else q["default"]
    extra.update(answers or {})
    missing = [q["variable"] for q in spec if q["required"] and q["variable"] not in extra]
    assert not missing, f"AWX would not launch {playbook} without {missing}"
    return extra


def run_job(collection_tree, playbook, extravars, envvars, workdir, image=None, mounts=()):
    """ansible-runner run of playbooks/<playbook>.yml with the local inventory of ``collection_tree``; with ``image``,
    inside that execution environment (docker, host network, as root so it can write the stack's directories)."""
    pdd = os.path.join(workdir, playbook)
    shutil.rmtree(pdd, ignore_errors=True)
    os.makedirs(os.path.join(pdd, "env"))
    shutil.copytree(os.path.join(collection_tree, "playbooks"), os.path.join(pdd, "project", "playbooks"),
                    symlinks=True)
    # the private data directory's inventory/ (what AWX writes there): runner passes it, on the host or in the EE
    shutil.copytree(os.path.join(collection_tree, "inventories", "local"), os.path.join(pdd, "inventory"),
                    symlinks=True)
    with open(os.path.join(pdd, "env", "extravars"), "w", encoding="utf-8") as f:
        json.dump(extravars, f)
    with open(os.path.join(pdd, "env", "envvars"), "w", encoding="utf-8") as f:
        json.dump(dict(envvars, ANSIBLE_NOCOLOR="1"), f)
    cmd = [os.path.join(BIN, "ansible-runner"), "run", pdd, "-p", f"playbooks/{playbook}.yml", "--ident", "job"]
    if image:
        cmd += ["--process-isolation", "--process-isolation-executable", "docker", "--container-image", image,
                "--container-option=--network=host", "--container-option=--user=0"]
        for mount in mounts:
            cmd += ["--container-volume-mount", f"{mount}:{mount}:Z"]
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ["PATH"])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    artifacts = os.path.join(pdd, "artifacts", "job")
    events = []
    events_dir = os.path.join(artifacts, "job_events")
    for name in sorted(os.listdir(events_dir), key=lambda n: int(n.split("-")[0])) if os.path.isdir(events_dir) else []:
        with open(os.path.join(events_dir, name), encoding="utf-8") as f:
            events.append(json.load(f))
    stats = next((e["event_data"] for e in events if e["event"] == "playbook_on_stats"), None)
    status = _read(os.path.join(artifacts, "status"))
    stdout = proc.stdout + proc.stderr + _read(os.path.join(artifacts, "stdout"))
    return Job(proc.returncode, status, stats, events, stdout)


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def results(job):
    """The messages of the debug tasks that ran (the playbooks' results are among them), in order."""
    found = []
    for e in job.events:
        data = e.get("event_data", {})
        debug = data.get("task_action") in ("debug", "ansible.builtin.debug")
        if e["event"] == "runner_on_ok" and debug and "msg" in data.get("res", {}):
            found.append(data["res"]["msg"])
    return found
