"""Configuration and the command-line helpers, run as real processes."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from apigw_gateway import config
from apigw_gateway.users import UserStore

from .conftest import GATEWAY_SRC, child_env


def run(*args, stdin=None, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", *args], input=stdin, capture_output=True, text=True, check=False,
                          env=child_env(env), cwd=cwd or GATEWAY_SRC, timeout=60)


def test_env_file_parsing(tmp_path):
    path = tmp_path / "production.env"
    path.write_text("# comment\n\nexport RATE_LIMIT_AUTH_MAX=3\nJWT_ISSUER=\"issuer x\"\n"
                    "UPSTREAM_URL=http://svc:4000 # trailing comment\nAUDIT_LOG_FILE='/var/log/a b.json'\n")
    env = {"RATE_LIMIT_GLOBAL_MAX": "50", "RATE_LIMIT_AUTH_MAX": "7"}
    config.load_env_file(str(path), env)
    settings = config.Settings.from_env(env)
    assert settings.rate_limit_auth_max == 7  # the environment wins over the file
    assert settings.rate_limit_global_max == 50
    assert settings.jwt_issuer == "issuer x" and settings.upstream_url == "http://svc:4000"
    assert settings.audit_log_file == "/var/log/a b.json"
    assert settings.rate_limit_global_window == 60000  # default


@pytest.mark.parametrize("env, message", [
    ({"RATE_LIMIT_GLOBAL_MAX": "ten"}, "RATE_LIMIT_GLOBAL_MAX must be an integer"),
    ({"KEY_LOCKOUT": "lockout:{username}"}, "KEY_LOCKOUT"),
    ({"JWT_ALGORITHMS": "RS256,HS256"}, "asymmetric"),
    ({"LOCKOUT_DURATION": "0"}, "LOCKOUT_DURATION must be a positive"),
])
def test_bad_settings_are_explained(env, message):
    with pytest.raises(config.ConfigError, match=message):
        config.Settings.from_env(env)


def test_key_templates_are_configurable():
    settings = config.Settings.from_env({"KEY_LOCKOUT": "prod:lock:{ip}:{username}"})
    assert settings.key_lockout.format(username="al", ip="1.2.3.4") == "prod:lock:1.2.3.4:al"


def test_example_env_file_lists_every_variable():
    with open(os.path.join(GATEWAY_SRC, "production.env.example")) as handle:
        example = config.parse_env_file(handle.name)
    assert example == {name: default for name, default, _doc in config.VARIABLES}
    assert set(example) == {f.upper() for f in config.Settings.__dataclass_fields__}


def test_users_cli(tmp_path):
    path = str(tmp_path / "users.json")
    added = run("apigw_gateway.users", "add", path, "dave", "--password-stdin", "--time-cost", "1",
                "--memory-cost", "2048", "--id", "user-123", stdin="s3cret pass\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "user-123"
    data = json.loads(pathlib.Path(path).read_text())
    assert data["users"]["dave"]["password_hash"].startswith("$argon2id$v=19$m=2048,t=1,p=1$")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    store = UserStore.load(path)
    assert store.verify("dave", "s3cret pass").id == "user-123"
    assert store.verify("dave", "wrong") is None and store.verify("nobody", "x") is None
    listed = run("apigw_gateway.users", "list", path)
    assert listed.stdout.strip() == "dave\tuser-123"
    bad = run("apigw_gateway.users", "add", path, "bad name", "--password-stdin", stdin="x\n")
    assert bad.returncode == 1 and "invalid username" in bad.stderr and "Traceback" not in bad.stderr
    assert run("apigw_gateway.users", "remove", path, "dave").returncode == 0
    assert json.loads(pathlib.Path(path).read_text())["users"] == {}


def test_devkeys_cli(tmp_path):
    created = run("apigw_gateway.devkeys", str(tmp_path / "keys"))
    assert created.returncode == 0, created.stderr
    again = run("apigw_gateway.devkeys", str(tmp_path / "keys"))
    assert again.returncode == 1 and "--add" in again.stderr
    rotated = run("apigw_gateway.devkeys", str(tmp_path / "keys"), "--add")
    keyset = json.loads((tmp_path / "keys" / "keyset.json").read_text())
    assert keyset["active"] == rotated.stdout.strip()
    assert keyset["keys"][created.stdout.strip()]["status"] == "verify"


def test_check_reports_a_broken_setup_in_one_line(tmp_path):
    result = run("apigw_gateway", "--check", env={"JWT_KEYS_DIR": str(tmp_path / "none"),
                                                  "USERS_FILE": str(tmp_path / "users.json")})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "jwks.json does not exist" in result.stderr
    run("apigw_gateway.devkeys", str(tmp_path / "keys"))
    run("apigw_gateway.users", "add", str(tmp_path / "users.json"), "eve", "--password-stdin", "--memory-cost",
        "1024", "--time-cost", "1", stdin="pw\n")
    env_file = tmp_path / "gw.env"
    env_file.write_text(f"JWT_KEYS_DIR={tmp_path / 'keys'}\nUSERS_FILE={tmp_path / 'users.json'}\n")
    ok = run("apigw_gateway", "--env-file", str(env_file), "--check")
    assert ok.returncode == 0 and "configuration ok" in ok.stdout


def test_upstream_mock_cli_help():
    result = run("apigw_gateway.upstream", "--help")
    assert result.returncode == 0 and "--port" in result.stdout
