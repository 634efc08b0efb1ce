"""Report lines take a plain string where a list is expected (AWX surveys and -e give strings): a comma-separated
string is the list the modules read, never a list of characters.

    python -m pytest tests/roles/test_playbook_reports.py -q
"""

import json

from tests.harness.redis_servers import start_standalone
from tests.roles.playbook_runner import ansible_playbook


def test_clear_ratelimits_subjects_as_a_string(collection_root, tmp_path):
    server = start_standalone()
    try:
        for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            server.cli("SET", "ratelimit:global:" + ip, "5", "EX", "600")
        result = ansible_playbook(
            collection_root,
            "playbooks/clear_ratelimits.yml",
            "-e",
            "ratelimit_scope=global",
            "-e",
            json.dumps({"ratelimit_subjects": "10.0.0.1, 10.0.0.2"}),
            "-e",
            "apigw_redis_port=%d" % server.port,
            base_dir=str(tmp_path / "base"),
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Cleared 2 rate-limit counter(s) of scope global for 10.0.0.1, 10.0.0.2 in" in result.stdout, (
            result.stdout
        )
        assert server.cli("--scan", "--pattern", "ratelimit:*").split() == ["ratelimit:global:10.0.0.3"]
    finally:
        server.stop()
