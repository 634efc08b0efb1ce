"""The kubernetes runtime, rendered without a cluster: every combination validated against the Kubernetes 1.29 and
1.32 schemas (kubernetes-validate, strict), the semantics that matter checked, the GitOps render byte-stable."""

import base64
import glob
import os
import re

import kubernetes_validate
import pytest
import yaml

from tests.kubernetes.conftest import COMBINATIONS, REPO

VERSIONS = ["1.29.0", "1.32.0"]
CONFIG = os.path.join(REPO, "gateway", "apigw_gateway", "config.py")


def objects(directory):
    found = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        with open(path, encoding="utf-8") as handle:
            obj = yaml.safe_load(handle)
        found[(obj["kind"], obj["metadata"]["name"])] = obj
    return found


def one(found, kind, prefix="api-gateway"):
    """The gateway's object of this kind (the redis role's have other names)."""
    matches = [obj for (k, name), obj in found.items() if k == kind and name.startswith(prefix)]
    assert len(matches) == 1, f"{kind}: {len(matches)} rendered"
    return matches[0]


def config_default(name):
    """A variable's default in the reference gateway's config.py (the drain times)."""
    with open(CONFIG, encoding="utf-8") as handle:
        return int(re.search(r'\("' + name + r'", "(\d+)"', handle.read()).group(1))


def gateway_routes():
    with open(os.path.join(REPO, "gateway", "apigw_gateway", "app.py"), encoding="utf-8") as handle:
        return set(re.findall(r'Route\("([^"]+)"', handle.read()))


QUANTITY = {"": 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(text):
    number, unit = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text)).groups()
    return float(number) * QUANTITY[unit]


@pytest.mark.parametrize("name", COMBINATIONS)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_strictly(renders, name, version):
    files = sorted(glob.glob(os.path.join(renders[name]["dir"], "*.yaml")))
    assert len(files) >= 8
    for path in files:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
        # raises ValidationError (with the path of the bad field) when the object does not match the schema
        kubernetes_validate.validate(data, version, strict=True)


def test_validator_rejects_an_unknown_field(renders):
    """The strict check is live: a misspelt field in a rendered Deployment fails it."""
    deployment = one(objects(renders["r1-statefulset"]["dir"]), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.32.0", strict=True)


@pytest.mark.parametrize("name", COMBINATIONS)
def test_deployment_semantics(renders, name):
    found = objects(renders[name]["dir"])
    deployment = one(found, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    labels = spec["template"]["metadata"]["labels"]
    # the selector selects the pods, and the runbook's `kubectl get pods -l app=api-gateway` finds them
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert labels["app"] == "api-gateway"
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    hpa = "hpa" in name
    assert ("replicas" not in spec) if hpa else spec["replicas"] == (3 if name.startswith("r3") else 1)
    # probes: real gateway paths on the container's named port
    port = {p["name"]: p["containerPort"] for p in container["ports"]}
    routes = gateway_routes()
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz" and probes["livenessProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert probe["path"] in routes and probe["port"] in port
    env_file = one(found, "ConfigMap")["data"]["production.env"]
    env = dict(line.split("=", 1) for line in env_file.splitlines() if line and not line.startswith("#"))
    assert int(env["PORT"]) == port["http"]
    assert "REDIS_PASSWORD" not in env_file
    # resources set, limits >= requests
    resources = container["resources"]
    for res in ("cpu", "memory"):
        assert quantity(resources["limits"][res]) >= quantity(resources["requests"][res]) > 0
    # non-root, read-only root, writable emptyDirs only where the gateway writes
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp", os.path.dirname(env["AUDIT_LOG_FILE"])}
    for mount in container["volumeMounts"]:
        if not mount.get("readOnly"):
            assert "emptyDir" in volumes[mount["name"]]
    # the grace period covers preStop + SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS (config.py's defaults if unset)
    drain = (int(env.get("SHUTDOWN_DELAY_MS", config_default("SHUTDOWN_DELAY_MS")))
             + int(env.get("SHUTDOWN_TIMEOUT_MS", config_default("SHUTDOWN_TIMEOUT_MS")))) / 1000
    prestop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= prestop + drain
    # every ConfigMap and Secret the pod uses is in the render
    used = {("ConfigMap", v["configMap"]["name"]) for v in pod["volumes"] if "configMap" in v}
    used |= {("Secret", v["secret"]["secretName"]) for v in pod["volumes"] if "secret" in v}
    used |= {("Secret", e["secretRef"]["name"]) for e in container.get("envFrom", [])}
    assert used and used <= set(found), used - set(found)
    # the key set Secret holds the files the gateway loads
    jwt = next(found[key] for key in used if key[1].startswith("api-gateway-jwt-"))
    assert {"jwks.json", "keyset.json"} <= set(jwt["data"])
    assert b'"keys"' in base64.b64decode(jwt["data"]["jwks.json"])


@pytest.mark.parametrize("name", COMBINATIONS)
def test_selectors_match_the_deployment(renders, name):
    found = objects(renders[name]["dir"])
    labels = one(found, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = one(found, "Deployment")["spec"]["selector"]["matchLabels"]
    assert one(found, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert one(found, "Service")["spec"]["selector"].items() <= labels.items()
    policies = [obj for (kind, _n), obj in found.items() if kind == "NetworkPolicy"]
    gateway_policy = next(p for p in policies if p["spec"]["podSelector"]["matchLabels"] == selector)
    egress = gateway_policy["spec"]["egress"]
    dns = [rule for rule in egress if {"port": 53, "protocol": "UDP"} in rule.get("ports", [])]
    assert dns, egress
    if "external" in name:
        assert not any(kind == "StatefulSet" for kind, _n in found)
        peers = [peer for rule in egress for peer in rule.get("to", [])]
        assert any(peer.get("ipBlock", {}).get("cidr") == "10.20.0.0/24" for peer in peers)
    else:
        redis = one(found, "StatefulSet", prefix="redis")
        redis_labels = redis["spec"]["template"]["metadata"]["labels"]
        to_redis = [peer["podSelector"]["matchLabels"] for rule in egress for peer in rule.get("to", [])
                    if "podSelector" in peer and "namespaceSelector" not in peer]
        assert to_redis and all(sel.items() <= redis_labels.items() for sel in to_redis)
        # Redis admits the gateway's pods
        redis_policy = next(p for p in policies
                            if p["spec"]["podSelector"]["matchLabels"].items() <= redis_labels.items())
        admitted = [peer["podSelector"]["matchLabels"]
                    for rule in redis_policy["spec"]["ingress"] for peer in rule["from"]]
        assert any(sel.items() <= labels.items() for sel in admitted)
        # a PVC through volumeClaimTemplates, and a headless Service named as serviceName
        assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        service = found[("Service", redis["spec"]["serviceName"])]
        assert service["spec"]["clusterIP"] == "None"
    if "hpa" in name:
        hpa = one(found, "HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"]["name"] == one(found, "Deployment")["metadata"]["name"]
    else:
        assert not any(kind == "HorizontalPodAutoscaler" for kind, _n in found)


@pytest.mark.parametrize("name", COMBINATIONS)
def test_gitops_render_is_byte_stable(renders, name):
    render = renders[name]
    assert render["hash_before"] == render["hash_after"]
    assert re.search(name + r"\s*:\s*ok=\d+\s+changed=0\s", render["second"].stdout), render["second"].stdout
    assert re.search(name + r"\s*:\s*ok=\d+\s+changed=[1-9]", render["first"].stdout), render["first"].stdout


def test_secrets_stay_out_of_the_output(renders):
    """The Redis password and the private keys are in the Secrets, not in the task output."""
    render = renders["r1-statefulset"]  # one run renders every combination
    for run in (render["first"], render["second"]):
        assert "BEGIN PRIVATE KEY" not in run.stdout + run.stderr
        assert "LS0tLS1CRUdJTi" not in run.stdout + run.stderr  # base64 of "-----BEGIN"
    for path in glob.glob(os.path.join(renders["r1-statefulset"]["dir"], "*-secret-*.yaml")):
        assert os.stat(path).st_mode & 0o077 == 0, path


def test_default_image_follows_the_collection_version():
    with open(os.path.join(REPO, "galaxy.yml"), encoding="utf-8") as handle:
        version = yaml.safe_load(handle)["version"]
    with open(os.path.join(REPO, "roles", "gateway", "defaults", "main.yml"), encoding="utf-8") as handle:
        defaults = handle.read()
    assert f"apigw/gateway:{version}" in defaults
