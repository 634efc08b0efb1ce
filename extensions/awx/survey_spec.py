# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWX survey specs generated from the operational playbooks' argument specs (one source).

A playbook's inputs are declared where it validates them:

- the inline ``argument_spec`` of its ``ansible.builtin.validate_argument_spec`` task(s);
- the entry points of the roles listed in ``SURVEY_ROLES`` that it imports: ``apigw.ops.preflight`` entry
  ``redis_connection`` (the shared Redis connection spec) and ``apigw.ops.loadtest`` (whose ``main`` entry point *is*
  the load-test playbook's input surface). Deploy roles (``gateway``, ``redis``) are not survey material: their
  variables describe the installation and belong in the inventory.

Ranges that the playbooks enforce with an assert (``0 <= x | default(20) | int <= 1000``, ``x | int >= 1``) become the
question's ``min``/``max``. A secret (``no_log`` in the spec, or a name such as ``*password*``) is always a
``password`` question. Options a survey cannot express (dicts) are left out and named in the survey's description.

Standard library + PyYAML only; no Ansible import, so it runs anywhere the venv does.
"""

import json
import os
import re

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SURVEY_DIR = os.path.join(REPO, "extensions", "awx", "surveys")

# The playbooks an operator launches as AWX job templates. site.yml / teardown.yml (deployment of the stack),
# demo.yml (the main job's tour) and awx_configure.yml (configures AWX itself) are not operations.
OPERATIONAL_PLAYBOOKS = (
    "backup", "clear_ratelimits", "healthcheck", "incident_bruteforce", "incident_ddos", "loadtest",
    "maintenance", "monitoring", "restart", "restore", "revoke_tokens", "rotate_jwt_keys", "scale",
    "unlock_account", "update_config",
)

# role -> entry points whose options are inputs of the playbook that includes/imports it
SURVEY_ROLES = {"apigw.ops.preflight": ("redis_connection",), "apigw.ops.loadtest": ("main",)}

SECRET_NAME = re.compile(r"password|passwd|secret|credential|api_?key|private_key", re.IGNORECASE)
# "0 <= name | default(20) | int <= 1000" and "name | default(10) | int >= 1" in the playbooks' range checks
RANGE_BOTH = re.compile(r"(-?\d+)\s*<=\s*(\w+)\s*(?:\|\s*default\([^)]*\)\s*)?\|\s*int\s*<=\s*(-?\d+)")
RANGE_MIN = re.compile(r"(\w+)\s*(?:\|\s*default\([^)]*\)\s*)?\|\s*int\s*>=\s*(-?\d+)")


def _tasks(node, nested=False):
    """(task, nested) for every task of a list of plays/tasks; nested: inside a block (a conditional step)."""
    for item in node or []:
        if not isinstance(item, dict):
            continue
        for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
            yield from _tasks(item.get(key), nested)
        for key in ("block", "rescue", "always"):
            yield from _tasks(item.get(key), True)
        yield item, nested


def _comment_descriptions(text):
    """{variable: text} from the playbook's header comment ("#   name    what it is    (default x)")."""
    found = {}
    for name, what in re.findall(r"^#\s+([a-z_][a-z0-9_]*)\s{2,}(\S.*)$", text, re.MULTILINE):
        found.setdefault(name, re.sub(r"\s{2,}", " ", what).strip())
    return found


def _role_spec(role, entry):
    name = role.split(".")[-1]
    with open(os.path.join(REPO, "roles", name, "meta", "argument_specs.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)["argument_specs"][entry].get("options", {})


def playbook_inputs(playbook):
    """(ordered {variable: argument spec}, [text the range checks are read from]) of playbooks/<playbook>.yml."""
    path = os.path.join(REPO, "playbooks", playbook + ".yml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    options, sources = {}, [text]
    for task, nested in _tasks(yaml.safe_load(text)):
        spec = (task.get("ansible.builtin.validate_argument_spec") or task.get("validate_argument_spec") or {})
        if isinstance(spec, dict) and isinstance(spec.get("argument_spec"), dict):
            options.update(spec["argument_spec"])
        for key in ("ansible.builtin.import_role", "ansible.builtin.include_role", "import_role", "include_role"):
            role = task.get(key)
            # a role included inside a block is an optional step (maintenance.yml's load test): not its inputs
            if nested or not isinstance(role, dict) or role.get("name") not in SURVEY_ROLES:
                continue
            entry = role.get("tasks_from", "main")
            if entry in SURVEY_ROLES[role["name"]]:
                for name, spec in _role_spec(role["name"], entry).items():
                    options.setdefault(name, spec)
                tasks_file = os.path.join(REPO, "roles", role["name"].split(".")[-1], "tasks", entry + ".yml")
                with open(tasks_file, encoding="utf-8") as f:
                    sources.append(f.read())
    return options, sources


def _ranges(sources):
    ranges = {}
    for text in sources:
        for low, name, high in RANGE_BOTH.findall(text):
            ranges[name] = (int(low), int(high))
        for name, low in RANGE_MIN.findall(text):
            ranges.setdefault(name, (int(low), None))
    return ranges


def _description(spec):
    text = spec.get("description", "")
    if isinstance(text, list):
        text = " ".join(text)
    # Ansible doc markup (C(x), O(x=y), V(x)) to plain text: a survey shows it raw
    return re.sub(r"\b[A-Z]\(([^)]*)\)", r"\1", str(text)).strip()


def is_secret(name, spec):
    return bool(spec.get("no_log")) or bool(SECRET_NAME.search(name))


def question(name, spec, ranges):
    """The AWX survey question of one argument-spec option, or None when a survey cannot express it."""
    kind = spec.get("type", "str")
    choices = spec.get("choices")
    default = spec.get("default")
    q = {
        "question_name": name,
        "question_description": _description(spec),
        "variable": name,
        "required": bool(spec.get("required", False)),
    }
    if is_secret(name, spec):
        # a secret is never a plain-text question, and never has a default in the template
        q.update(type="password", default="")
    elif kind == "dict":
        return None
    elif kind == "bool":
        q.update(type="multiplechoice", choices=["true", "false"],
                 default="" if default is None else ("true" if default else "false"))
    elif kind == "list" and choices:
        q.update(type="multiselect", choices=[str(c) for c in choices], default="\n".join(map(str, default or [])))
    elif choices:
        q.update(type="multiplechoice", choices=[str(c) for c in choices],
                 default="" if default is None else str(default))
    elif kind == "int":
        q.update(type="integer", default="" if default is None else int(default))
        low, high = ranges.get(name, (None, None))
        if low is not None:
            q["min"] = low
        if high is not None:
            q["max"] = high
    elif kind == "float":
        q.update(type="float", default="" if default is None else float(default))
    elif kind == "list":
        q.update(type="text", default=", ".join(map(str, default or [])))
        q["question_description"] = (q["question_description"] + " Comma-separated list.").strip()
    else:  # str, path, raw
        q.update(type="text", default="" if default is None else str(default))
    return q


def survey(playbook):
    options, sources = playbook_inputs(playbook)
    ranges = _ranges(sources)
    comments = _comment_descriptions(sources[0])
    spec, left_out = [], []
    for name, declared in options.items():
        option = dict(declared or {})
        # an inline spec without a description: the playbook's header comment describes the input
        if not option.get("description") and name in comments:
            option["description"] = comments[name]
        q = question(name, option, ranges)
        if q is None:
            left_out.append(name)
        else:
            spec.append(q)
    description = f"Inputs of playbooks/{playbook}.yml, generated from its argument spec by scripts/awx-surveys.py."
    if left_out:
        description += " Not in the survey (set them in the template's extra_vars): " + ", ".join(left_out) + "."
    return {"name": playbook, "description": description, "spec": spec}


def render(data):
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def write_all(directory=SURVEY_DIR):
    os.makedirs(directory, exist_ok=True)
    for playbook in OPERATIONAL_PLAYBOOKS:
        with open(os.path.join(directory, playbook + ".json"), "w", encoding="utf-8") as f:
            f.write(render(survey(playbook)))


def check_all(directory=SURVEY_DIR):
    """One line per disagreement between the committed surveys in ``directory`` and the playbooks."""
    problems = []
    present = {n[:-5] for n in os.listdir(directory) if n.endswith(".json")} if os.path.isdir(directory) else set()
    for extra in sorted(present - set(OPERATIONAL_PLAYBOOKS)):
        problems.append(f"{extra}.json: no operational playbook playbooks/{extra}.yml")
    for playbook in OPERATIONAL_PLAYBOOKS:
        path = os.path.join(directory, playbook + ".json")
        if playbook not in present:
            problems.append(f"{playbook}.json: missing")
            continue
        with open(path, encoding="utf-8") as f:
            committed = json.load(f)
        expected = survey(playbook)
        problems.extend(f"{playbook}.json: {p}" for p in _differences(committed, expected))
    return problems


def _differences(committed, expected):
    have = {q.get("variable"): q for q in committed.get("spec", [])}
    want = {q["variable"]: q for q in expected["spec"]}
    for name in want.keys() - have.keys():
        yield f"question {name} missing (the playbook's argument spec has it)"
    for name in have.keys() - want.keys():
        yield f"question {name} is not an input of the playbook"
    for name in sorted(want.keys() & have.keys()):
        for key in sorted(set(want[name]) | set(have[name])):
            if want[name].get(key) != have[name].get(key):
                yield f"question {name}: {key} is {have[name].get(key)!r}, the playbook says {want[name].get(key)!r}"
    if [q.get("variable") for q in committed.get("spec", [])] != [q["variable"] for q in expected["spec"]] \
            and have.keys() == want.keys():
        yield "questions out of order"
    for key in ("name", "description"):
        if committed.get(key) != expected[key]:
            yield f"{key} differs"
