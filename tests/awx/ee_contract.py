# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ansible-runner contract inside the execution environment, the way AWX runs a job: `ansible-runner run
--process-isolation --process-isolation-executable docker --container-image <EE>` (host network) for
clear_ratelimits, unlock_account, backup and healthcheck against a live local stack; the collection is the one
installed in the image, not this checkout. Each job's stats are written to build/ee/contract.json.

Not collected by a plain pytest run (the name does not start with test_): it needs the image, which takes minutes
to build. scripts/ee-build.sh --run builds it and runs this file:

    APIGW_EE_IMAGE=apigw/ee:latest python -m pytest tests/awx/ee_contract.py -q
"""

import json
import os

import pytest

from tests.awx.runner_jobs import REPO
from tests.awx.test_runner_contract import CASES, assert_failed, assert_successful, launch, redis_cli, seed

IMAGE = os.environ.get("APIGW_EE_IMAGE", "apigw/ee:latest")
IN_THE_EE = ("clear_ratelimits", "unlock_account", "backup", "healthcheck")
REPORT = os.path.join(REPO, "build", "ee", "contract.json")


@pytest.fixture(scope="module")
def report():
    found = {}
    yield found
    os.makedirs(os.path.dirname(REPORT), exist_ok=True)
    with open(REPORT, "w", encoding="utf-8") as f:
        json.dump({"image": IMAGE, "jobs": found}, f, indent=2)


@pytest.fixture(scope="module")
def seeded(stack):
    seed(stack[1])
    return stack


@pytest.mark.parametrize("playbook, answers, expected", [c for c in CASES if c[0] in IN_THE_EE], ids=IN_THE_EE)
def test_job_in_the_ee(collection_root, seeded, tmp_path, report, playbook, answers, expected):
    # backup_python defaults to the stack's virtualenv on the Redis host, a host path the container does not have;
    # in the EE the module runs with the image's Python (redis, crcmod installed)
    more = {"backup_python": "/usr/bin/python3"} if playbook == "backup" else None
    job = launch(collection_root, seeded, tmp_path, playbook, answers, image=IMAGE, more=more)
    result = assert_successful(job, expected)
    keys = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")
    report[playbook] = {"rc": job.rc, "status": job.status, "stats": {k: job.stats[k] for k in keys},
                        "result": str(result)}
    # the job ran in the container (its project is /runner/project), with the collection installed in the image
    paths = {e["event_data"].get("task_path", "") for e in job.events if "event_data" in e} - {""}
    assert paths and all(p.startswith(("/runner/project/playbooks/", "/usr/share/ansible/collections/")) for p in paths)
    if playbook in ("backup", "healthcheck"):
        assert any(p.startswith("/usr/share/ansible/collections/ansible_collections/apigw/ops/roles/") for p in paths)
    if playbook == "clear_ratelimits":
        assert redis_cli(seeded[1], "--scan", "--pattern", "ratelimit:global:*") == ""


def test_failing_verification_fails_the_job_in_the_ee(collection_root, stack, tmp_path, report):
    from tests.roles.playbook_runner import free_port

    job = launch(collection_root, stack, tmp_path, "healthcheck", None, image=IMAGE,
                 more={"gateway_port": free_port(), "gateway_healthcheck_retries": 1})
    assert_failed(job)
    report["healthcheck (nothing listening)"] = {"rc": job.rc, "status": job.status,
                                                 "stats": {"failures": job.stats["failures"]}}
