# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write (or --check) the AWX survey specs extensions/awx/surveys/<playbook>.json from the playbooks' argument specs.

    python scripts/awx-surveys.py           regenerate every survey
    python scripts/awx-surveys.py --check   exit 1 with one line per survey that disagrees with its playbook
"""

import importlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "extensions", "awx"))

survey_spec = importlib.import_module("survey_spec")


def main(argv):
    if argv[1:] == ["--check"]:
        problems = survey_spec.check_all()
        for line in problems:
            print(line)
        if problems:
            print("Surveys disagree with the playbooks: run python scripts/awx-surveys.py and commit the result.")
        return 1 if problems else 0
    if argv[1:]:
        print(__doc__.strip())
        return 2
    survey_spec.write_all()
    print(f"wrote {len(survey_spec.OPERATIONAL_PLAYBOOKS)} surveys in {survey_spec.SURVEY_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
