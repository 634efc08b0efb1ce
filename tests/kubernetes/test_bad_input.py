"""Bad input to the kubernetes runtime: one line each, before anything is applied. There is no API server here, so
"cannot reach it" is tested for real (a kubeconfig whose server is a closed loopback port); a missing namespace
with create_namespace=false needs a cluster and is covered by molecule/kubernetes only."""

import json
import os
import re

import pytest

from tests.kubernetes.conftest import render
from tests.roles.playbook_runner import free_port

APPLY = ["-e", "gateway_kubernetes_apply=true", "-e", "redis_kubernetes_apply=true"]


def failure_message(result):
    """The msg of the one failed task (fatal: [...]: FAILED! => {json})."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    found = re.findall(r"fatal: \[localhost\]: FAILED! => (\{.*\})", result.stdout)
    assert len(found) == 1, output
    message = json.loads(found[0])["msg"]
    assert "\n" not in message and "Traceback" not in message, message
    return message


@pytest.fixture
def render_dir(tmp_path):
    return str(tmp_path / "render")


@pytest.mark.parametrize("extra, expected", [
    (["-e", "gateway_replicas=0"], "gateway_replicas must be at least 1 (got 0)"),
    (["-e", '{"gateway_kubernetes_resources": {"requests": {"cpu": "1", "memory": "1Gi"},'
            ' "limits": {"cpu": "500m", "memory": "512Mi"}}}'], "the limit is below the request for cpu, memory"),
    (["-e", '{"gateway_kubernetes_resources": {"requests": {"cpu": "250m", "memory": "256Mi"},'
            ' "limits": {"cpu": "1", "memory": "600Mi"}}}'], None),  # control: valid resources render
    (["-e", '{"gateway_kubernetes_resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1", "memory": "1Gi"}}}'],
     "requests.memory is missing or not a quantity"),
    (["-e", "gateway_kubernetes_redis=external"], "gateway_kubernetes_redis=external needs gateway_redis_url"),
])
def test_refused_before_render(collection_root, render_dir, extra, expected):
    result = render(collection_root, render_dir, *extra)
    manifests = os.path.join(render_dir, "manifests")
    if expected is None:
        assert result.returncode == 0, result.stdout + result.stderr
        assert os.path.isdir(manifests)
        return
    assert expected in failure_message(result)
    assert not os.path.exists(os.path.join(manifests, "20-gateway-05-deployment-api-gateway.yaml"))


def test_unreachable_api_server(collection_root, render_dir, tmp_path, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    port = free_port()  # nothing listens there
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters:
  - name: nowhere
    cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}
users:
  - name: nobody
    user: {{token: not-a-token}}
contexts:
  - name: nowhere
    context: {{cluster: nowhere, user: nobody, namespace: apigw}}
current-context: nowhere
""")
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", str(kubeconfig))
    result = render(collection_root, render_dir, *APPLY)
    message = failure_message(result)
    assert message.startswith("Cannot reach the Kubernetes API server"), message
    assert message.endswith("Nothing was applied."), message
    # the first object the redis role would apply never was: the failing task is the check, and nothing was written
    assert "Apply the Secrets" not in result.stdout.split("Cannot reach")[0].split("Refuse to apply")[-1]
    assert not os.path.exists(os.path.join(render_dir, "manifests"))


def test_missing_kubeconfig(collection_root, render_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config either
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    message = failure_message(render(collection_root, render_dir, *APPLY))
    assert message.startswith("Cannot reach the Kubernetes API server"), message
