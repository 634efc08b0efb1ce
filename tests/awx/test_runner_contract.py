# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ansible-runner contract (what AWX reads of a job): each operational playbook, launched with its survey's
defaults (plus the answers AWX requires) and the Redis password as the "apigw Redis" credential injects it, against
a live local stack: exit status 0 and status successful, `stats` with the host ok and no failure, and one event that
carries the playbook's one-line result; a failing verification makes the job fail (status failed, non-zero).

Representative playbooks (the whole list would take minutes per playbook on 2 cores): the Redis key procedures
(clear_ratelimits, unlock_account, revoke_tokens), backup, healthcheck, and the maintenance window. The same cases run
inside the execution environment with process isolation: tests/awx/ee_contract.py (scripts/ee-build.sh --run).

    python -m pytest tests/awx/test_runner_contract.py -q
"""

import re
import shutil
import subprocess

import pytest

from tests.awx.conftest import REDIS_PASSWORD
from tests.awx.runner_jobs import results, run_job, survey_extravars

# (playbook, the answers of required questions without default (None: no survey), the one-line result it prints)
CASES = [
    ("clear_ratelimits", {"ratelimit_scope": "global"},
     r"^Cleared 2 rate-limit counter\(s\) of scope global in [0-9.]+ s; verified: none left\.$"),
    ("unlock_account", {"unlock_username": "alice"},
     r"^Unlocked alice: 1 lockout\(s\), 1 failure counter\(s\); verified: 0 lockout\(s\) left\.$"),
    ("revoke_tokens", {"revoke_user_id": "user-1"},
     r"^Revoked 1 token\(s\) of user-1 \(0 already revoked, 0 expired\); verified: 0 live token\(s\) unrevoked\.$"),
    ("backup", {}, r"^Took backup dump-\d{8} in \S+ \(\d+ keys, \d+ bytes, verified\); retention 7 days / 3 kept: "),
    # healthcheck.yml reports a mapping (replica URL -> healthz, readyz, latencies), one event
    ("healthcheck", None, r"^\{'http://127\.0\.0\.1:\d+': \{'healthz': 'ok', 'readyz': 'ok \(redis ok\)'"),
    ("maintenance", {"maintenance_reason": "CHG-1 AWX contract test", "maintenance_drain_seconds": 1},
     r'^Ran the maintenance window "CHG-1 AWX contract test" on .* maintenance off and verified\.$'),
]


def redis_cli(inventory_vars, *args):
    out = subprocess.run([shutil.which("redis-cli"), "-p", str(inventory_vars["redis_port"]), "-a", REDIS_PASSWORD,
                          "--no-auth-warning", *args], capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


def seed(inventory_vars):
    """What the key procedures will clear: two rate-limit counters, a lockout, a refresh token."""
    for key in ("ratelimit:global:10.0.0.1", "ratelimit:global:10.0.0.2", "lockout:alice:10.0.0.1",
                "loginfail:alice:10.0.0.1"):
        redis_cli(inventory_vars, "SET", key, "5", "EX", "600")
    redis_cli(inventory_vars, "HSET", "token:user:user-1", "jti-0000000001", "4102444800")


def launch(collection_root, stack, workdir, playbook, answers, image=None, more=None):
    base, inventory_vars = stack
    extra = dict(inventory_vars)
    if answers is not None:
        extra.update(survey_extravars(playbook, answers))
    # the "apigw Redis" credential injects it (awx_configure.yml)
    extra["apigw_redis_password"] = REDIS_PASSWORD
    extra.update(more or {})
    envvars = {"APIGW_BASE_DIR": base}
    if not image:
        envvars["ANSIBLE_COLLECTIONS_PATH"] = collection_root[0]
    return run_job(collection_root[1], playbook, extra, envvars, str(workdir), image=image, mounts=(base,))


def assert_successful(job, expected):
    assert job.rc == 0 and job.status == "successful", job.stdout[-4000:]
    assert job.stats is not None, job.stdout[-4000:]
    assert job.stats["failures"] == {} and job.stats["dark"] == {}, job.stats
    assert job.stats["ok"].get("localhost", 0) > 0, job.stats
    found = [msg for msg in results(job) if re.search(expected, str(msg))]
    assert len(found) == 1 and "\n" not in str(found[0]), (expected, results(job))
    return found[0]


def assert_failed(job):
    assert job.rc != 0 and job.status == "failed", job.stdout[-4000:]
    assert job.stats is not None and job.stats["failures"], job.stats


@pytest.fixture(scope="module")
def seeded(stack):
    seed(stack[1])
    return stack


@pytest.mark.parametrize("playbook, answers, expected", CASES, ids=[c[0] for c in CASES])
def test_job_succeeds_with_its_survey_defaults(collection_root, seeded, tmp_path, playbook, answers, expected):
    job = launch(collection_root, seeded, tmp_path, playbook, answers)
    assert_successful(job, expected)
    if playbook == "clear_ratelimits":
        assert redis_cli(seeded[1], "--scan", "--pattern", "ratelimit:global:*") == ""
    if playbook == "unlock_account":
        assert redis_cli(seeded[1], "EXISTS", "lockout:alice:10.0.0.1") == "0"


def test_a_failing_verification_fails_the_job(collection_root, stack, tmp_path):
    """healthcheck.yml against a gateway port where nothing listens: the verification fails, so does the job."""
    from tests.roles.playbook_runner import free_port

    job = launch(collection_root, stack, tmp_path, "healthcheck", None,
                 more={"gateway_port": free_port(), "gateway_healthcheck_retries": 1})
    assert_failed(job)
