# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The committed AWX surveys (extensions/awx/surveys) agree with the playbooks' argument specs, and the check that
says so catches a survey that drifted."""

import json
import importlib
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "extensions", "awx"))

survey_spec = importlib.import_module("survey_spec")


def test_committed_surveys_match_the_playbooks():
    assert survey_spec.check_all() == []


def test_the_script_check_passes():
    result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "awx-surveys.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_operational_playbook_has_a_survey():
    names = {n[:-4] for n in os.listdir(os.path.join(REPO, "playbooks")) if n.endswith(".yml")}
    not_operations = {"site", "teardown", "demo", "awx_configure"}
    assert set(survey_spec.OPERATIONAL_PLAYBOOKS) == names - not_operations


def _all_questions():
    for playbook in survey_spec.OPERATIONAL_PLAYBOOKS:
        with open(os.path.join(survey_spec.SURVEY_DIR, playbook + ".json"), encoding="utf-8") as f:
            for q in json.load(f)["spec"]:
                yield playbook, q


def test_secrets_are_password_questions_without_default():
    secrets = [(p, q) for p, q in _all_questions()
               if survey_spec.SECRET_NAME.search(q["variable"]) or q["variable"] == "apigw_redis_url"]
    names = {q["variable"] for _playbook, q in secrets}
    assert names >= {"apigw_redis_password", "apigw_redis_url", "loadtest_password"}
    for playbook, q in secrets:
        assert q["type"] == "password" and q["default"] == "", (playbook, q)


def test_questions_are_valid_awx_questions():
    kinds = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
    for playbook, q in _all_questions():
        assert q["type"] in kinds, (playbook, q)
        assert q["question_name"] and q["variable"], (playbook, q)
        if q["type"] in ("multiplechoice", "multiselect"):
            assert q["choices"] and (q["default"] == "" or set(q["default"].split("\n")) <= set(q["choices"])), q
        if "min" in q and "max" in q:
            assert q["min"] <= q["max"], q


@pytest.fixture
def surveys_copy(tmp_path):
    target = tmp_path / "surveys"
    shutil.copytree(survey_spec.SURVEY_DIR, target)
    return target


def _mutate(directory, playbook, change):
    path = directory / (playbook + ".json")
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set(variable, **fields):
    def change(data):
        for q in data["spec"]:
            if q["variable"] == variable:
                q.update(fields)
    return change


@pytest.mark.parametrize("playbook, change, expected", [
    # a password shown in clear text in AWX
    ("unlock_account", _set("apigw_redis_password", type="text"),
     "question apigw_redis_password: type is 'text', the playbook says 'password'"),
    # a default that the playbook no longer has
    ("clear_ratelimits", _set("ratelimit_max_keys", default=5),
     "question ratelimit_max_keys: default is 5, the playbook says 100000"),
    # a choice the playbook refuses
    ("backup", _set("backup_action", choices=["now", "schedule", "unschedule", "later"]),
     "question backup_action: choices is"),
    # a question whose input the playbook dropped, and one it added
    ("restart", lambda d: d["spec"].append(dict(d["spec"][0], variable="restart_fast", question_name="x")),
     "question restart_fast is not an input of the playbook"),
    ("revoke_tokens", lambda d: d["spec"].pop(0), "question revoke_user_id missing"),
    ("scale", _set("replicas", required=True), "question replicas: required is True, the playbook says False"),
])
def test_a_broken_survey_is_reported(surveys_copy, playbook, change, expected):
    _mutate(surveys_copy, playbook, change)
    problems = survey_spec.check_all(str(surveys_copy))
    assert len(problems) == 1 and problems[0].startswith(playbook + ".json: " + expected), problems


def test_a_missing_or_foreign_survey_is_reported(surveys_copy):
    (surveys_copy / "healthcheck.json").unlink()
    (surveys_copy / "site.json").write_text("{}")
    assert survey_spec.check_all(str(surveys_copy)) == [
        "site.json: no operational playbook playbooks/site.yml", "healthcheck.json: missing"]


def test_a_changed_playbook_spec_is_reported(surveys_copy, monkeypatch):
    """The other direction: the playbook changes, the committed survey is stale."""
    original = survey_spec.playbook_inputs

    def changed(playbook):
        options, sources = original(playbook)
        if playbook == "unlock_account":
            options = dict(options, unlock_reason={"type": "str", "required": True})
        return options, sources

    monkeypatch.setattr(survey_spec, "playbook_inputs", changed)
    assert survey_spec.check_all(str(surveys_copy)) == [
        "unlock_account.json: question unlock_reason missing (the playbook's argument spec has it)"]
