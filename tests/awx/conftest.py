# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the AWX tests: the playbook tests' collection tree and base directory, and a live local stack."""

import shutil
import tempfile

import pytest

# fixtures, re-exported for the tests of this directory
from tests.roles.conftest import base_dir, collection_root  # noqa: F401  # pylint: disable=unused-import
from tests.roles.playbook_runner import ansible_playbook, free_port

REDIS_PASSWORD = "awx-job-S3cret-pw"


@pytest.fixture(scope="session")
def stack(collection_root):  # noqa: F811  (the fixture imported above)
    """The local stack (site.yml: Redis and the gateway under supervisord) in a throw-away base directory on free
    ports; yields (base directory, the inventory variables as extra vars). Removed with teardown.yml -e purge=true."""
    base = tempfile.mkdtemp(prefix="apigw-awx-")
    redis = free_port()
    gateway = free_port(exclude=(redis,))
    upstream = free_port(exclude=(redis, gateway))
    inventory_vars = {"redis_port": redis, "gateway_port": gateway, "gateway_upstream_port": upstream,
                      "redis_password": REDIS_PASSWORD}
    extra = [a for k, v in inventory_vars.items() for a in ("-e", f"{k}={v}")]
    deployed = ansible_playbook(collection_root, "playbooks/site.yml", *extra, base_dir=base)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-2000:]
    try:
        yield base, inventory_vars
    finally:
        ansible_playbook(collection_root, "playbooks/teardown.yml", *extra, "-e", "purge=true", base_dir=base)
        shutil.rmtree(base, ignore_errors=True)
