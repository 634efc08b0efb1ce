"""Bad input to the kubernetes runtime: one line each, before anything is applied. There is no API server here, so
"cannot reach it" is tested for real (a kubeconfig whose server is a closed loopback port); a missing namespace
with create_namespace=false needs a cluster and is covered by molecule/kubernetes only. The cases run as hosts of
one ansible-playbook run (each fails on its own)."""

import json
import os
import re

import pytest

from tests.kubernetes.conftest import render_hosts
from tests.roles.playbook_runner import free_port

APPLY = {"render_apply": True}  # render.yml: apply instead of GitOps
CASES = {
    "replicas-zero": ({"gateway_replicas": 0}, "gateway_replicas must be at least 1 (got 0)"),
    "limits-below-requests": ({"gateway_kubernetes_resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                                                                "limits": {"cpu": "500m", "memory": "512Mi"}}},
                              "the limit is below the request for cpu, memory"),
    "memory-request-missing": ({"gateway_kubernetes_resources": {"requests": {"cpu": "250m"},
                                                                 "limits": {"cpu": "1", "memory": "1Gi"}}},
                               "requests.memory is missing or not a quantity"),
    "external-without-egress": ({"gateway_kubernetes_redis": "external"},
                                "gateway_kubernetes_redis=external needs gateway_redis_url"),
    "no-kubeconfig": ({**APPLY, "gateway_kubernetes_kubeconfig": "/nonexistent/kubeconfig",
                       "redis_kubernetes_kubeconfig": "/nonexistent/kubeconfig"},
                      "Cannot reach the Kubernetes API server"),
    # control: limits above requests (in other units) render
    "valid-resources": ({"gateway_kubernetes_resources": {"requests": {"cpu": "0.25", "memory": "256Mi"},
                                                          "limits": {"cpu": "1000m", "memory": "1G"}}}, None),
}


def failures(result):
    """host -> msg of its failed task (fatal: [host]: FAILED! => {json}); each must be one line."""
    found = {}
    for host, body in re.findall(r"fatal: \[([^\]]+)\]: FAILED! => (\{.*\})", result.stdout):
        message = json.loads(body)["msg"]
        assert "\n" not in message and "Traceback" not in message, message
        assert host not in found, result.stdout
        found[host] = message
    return found


@pytest.fixture(scope="module")
def bad_runs(collection_root, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("bad"))
    result = render_hosts(collection_root, directory, {name: case[0] for name, case in CASES.items()})
    return directory, result, failures(result)


@pytest.mark.parametrize("name", CASES)
def test_refused_before_anything_is_applied(bad_runs, name):
    directory, result, failed = bad_runs
    expected = CASES[name][1]
    manifests = os.path.join(directory, name, "manifests")
    if expected is None:
        assert name not in failed, failed.get(name)
        assert os.path.isfile(os.path.join(manifests, "20-gateway-05-deployment-api-gateway.yaml"))
        return
    assert result.returncode != 0
    assert expected in failed[name], failed.get(name, result.stdout)
    assert failed[name].endswith(("Nothing was applied.",)), failed[name]
    assert not os.path.exists(os.path.join(manifests, "20-gateway-05-deployment-api-gateway.yaml"))


def test_unreachable_api_server(collection_root, tmp_path, monkeypatch):
    """K8S_AUTH_KUBECONFIG names a cluster at a closed loopback port: the check fails, nothing is applied."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
        "clusters": [{"name": "nowhere", "cluster": {"server": f"https://127.0.0.1:{free_port()}",
                                                     "insecure-skip-tls-verify": True}}],
        "users": [{"name": "nobody", "user": {"token": "not-a-token"}}],
        "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}]}))
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", str(kubeconfig))
    result = render_hosts(collection_root, str(tmp_path), {"unreachable": APPLY})
    message = failures(result)["unreachable"]
    assert message.startswith("Cannot reach the Kubernetes API server"), message
    assert message.endswith("Nothing was applied."), message
    # the failing task is the check before the first apply task, and nothing was written for GitOps
    assert "Apply the Secrets" not in result.stdout
    assert not os.path.exists(tmp_path / "unreachable" / "manifests")
