# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbook tests' fixtures (one collection tree per session, a base directory that must stay absent)."""

from tests.roles.conftest import base_dir, collection_root  # noqa: F401  (fixtures)
