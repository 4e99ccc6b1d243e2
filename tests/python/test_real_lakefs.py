"""lakests beside a REAL lakeFS OSS server (built from the Go module proxy at the release pinned in
tests/lakefs/go.mod) and the REAL lakectl: the WIRE.md facts that need no authorization API.

The deployment here is lakeFS OSS in its default basic-auth mode (one admin user in lakeFS's own
store) with lakests's STS role sharing `auth.encrypt.secret_key`: a user signs in through lakests
(development IdP -> authenticator -> STS) as the lakeFS admin, and uses the token at lakeFS.
"""

import json
import os
import shlex
import subprocess
import time
import uuid

import jwt
import lakefs
import lakefs.client
import pytest
import requests

from conftest import ROOT, lakests_bin, stop_server
from real_lakefs import ADMIN, LakeFS, devidp_code, lakefs_bin_dir, start_lakests, write_lakectl_token_cache

SECRET = "real-lakefs-suite-secret-key-shared-with-lakests-64-bytes-or-more-for-hs512"
FOLLOW = ROOT / "tests" / "login-browser" / "follow.mjs"


@pytest.fixture(scope="module")
def lakefs_server(tmp_path_factory):
    server = LakeFS(tmp_path_factory.mktemp("lakefs"), SECRET).start()
    server.setup_admin(ADMIN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lakests(tmp_path_factory):
    """lakests with lakeFS's secret; the IdP's alice (external id dev:alice: the provider namespaces it) is mapped to lakeFS's admin user."""
    system = start_lakests(
        tmp_path_factory.mktemp("lakests"), SECRET,
        users=[(ADMIN, "dev:alice", ["admins"])],
        idp_users=[{"sub": "alice", "email": "alice@example.com", "name": "Alice", "groups": ["admins"]},
                   {"sub": "mallory", "email": "mallory@example.com", "name": "Mallory"}])
    yield system
    stop_server(system.server)


def lakests_login(system, home, output: str) -> str:
    """The real `lakests login` a user runs, its browser being the redirect follower (the
    development IdP signs alice in without a page). Returns its stdout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LAKESTS_", "LAKECTL_", "LAKEFS_")) and not k.lower().endswith("_proxy")
           and k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), LAKESTS_TEST_LOGIN_HINT="alice")
    port = system.redirect.rsplit(":", 1)[1].split("/")[0]
    proc = subprocess.run(
        [lakests_bin(), "login", "--endpoint", system.base, "--port", port, "--output", output,
         "--timeout", "60s", "--browser-command", f"node {shlex.quote(str(FOLLOW))}"],
        capture_output=True, text=True, env=env, timeout=90, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"lakests login failed: {proc.stderr}"
    return proc.stdout


def sts_token(system, login_hint="alice", **extra) -> dict:
    code, state = devidp_code(system, login_hint)
    resp = requests.post(f"{system.base}/api/v1/sts/login", timeout=30,
                         json={"code": code, "state": state, "redirect_uri": system.redirect, **extra})
    assert resp.status_code == 200, resp.text
    return resp.json()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# WIRE §4 + §7 ----------------------------------------------------------------------------------

def test_a_token_minted_by_lakests_is_accepted_by_real_lakefs(lakefs_server, lakests):
    body = sts_token(lakests, ttl_seconds=600)
    resp = requests.get(f"{lakefs_server.api}/user", headers=bearer(body["token"]), timeout=10)
    assert resp.status_code == 200, resp.text
    user = resp.json()["user"]
    assert user["id"] == ADMIN
    # WIRE §7 says lakeFS fills friendly_name with the username when the user has none; that
    # holds for a user record without the field (nil). lakeFS's own basic-mode admin has an
    # EMPTY friendly name, and lakeFS answers it as it is: "" (docs/compatibility.md).
    assert user["friendly_name"] == ""
    assert isinstance(user["creation_date"], int)
    # lakests's own GET /api/v1/user agrees on who this is.
    mine = requests.get(f"{lakests.base}/api/v1/user", headers=bearer(body["token"]), timeout=10).json()["user"]
    assert mine["id"] == user["id"]


def test_real_lakefs_healthcheck_and_config_as_wire_says(lakefs_server, lakests):
    # §7: healthcheck is 204 without credentials.
    health = requests.get(f"{lakefs_server.api}/healthcheck", timeout=10)
    assert health.status_code == 204
    token = sts_token(lakests)["token"]
    # §7: /config needs authentication ...
    assert requests.get(f"{lakefs_server.api}/config", timeout=10).status_code == 401
    resp = requests.get(f"{lakefs_server.api}/config", headers=bearer(token), timeout=10)
    assert resp.status_code == 200, resp.text
    config = resp.json()
    # ... and carries these sections; lakeFS OSS names itself in version_context.
    for key in ("version_config", "storage_config", "storage_config_list", "ui_config", "capabilities_config"):
        assert key in config, (key, sorted(config))
    assert config["version_config"]["version"] == "1.84.0"
    assert config["version_config"]["version_context"] == "lakeFS"
    assert config["storage_config"]["blockstore_type"] == "local"


def forge(secret=SECRET, alg="HS256", **overrides) -> str:
    now = int(time.time())
    claims = {"jti": str(uuid.uuid4()), "iss": "auth", "sub": ADMIN, "aud": "login", "iat": now, "exp": now + 300}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm=alg)


def test_real_lakefs_verifies_tokens_with_the_rules_wire_states(lakefs_server):
    """WIRE §4 against lakeFS itself (PyJWT forges the tokens lakests would or would not mint)."""
    accepted = {
        "HS256 as lakests mints": forge(),
        "HS384": forge(alg="HS384"),
        "HS512": forge(alg="HS512"),
        "aud absent (backward compatibility)": forge(aud=None),
        "no iss, no jti (lakeFS does not check them)": forge(iss=None, jti=None),
    }
    refused = {
        "wrong secret": forge(secret="not-the-secret-of-this-lakefs-but-as-long"),
        "expired": forge(exp=int(time.time()) - 5),
        "no exp": forge(exp=None),
        "aud other": forge(aud="other"),
        "aud as an array": forge(aud=["login"]),
        "alg none": jwt.encode({"sub": ADMIN, "aud": "login", "exp": int(time.time()) + 300}, None, algorithm="none"),
        "a user lakeFS does not have": forge(sub="nobody-here"),
    }
    for name, token in accepted.items():
        resp = requests.get(f"{lakefs_server.api}/user", headers=bearer(token), timeout=10)
        assert resp.status_code == 200, (name, resp.status_code, resp.text)
        assert resp.json()["user"]["id"] == ADMIN, name
    for name, token in refused.items():
        resp = requests.get(f"{lakefs_server.api}/user", headers=bearer(token), timeout=10)
        assert resp.status_code == 401, (name, resp.status_code, resp.text)
        assert "message" in resp.json(), (name, resp.text)


def test_a_token_from_another_secret_is_refused_by_real_lakefs(lakefs_server, tmp_path):
    """A lakests that does not share lakeFS's secret mints tokens lakeFS refuses."""
    other = start_lakests(tmp_path / "other", "a-different-secret-than-lakefs-has-32+", users=[(ADMIN, "dev:alice", [])],
                          idp_users=[{"sub": "alice"}])
    try:
        token = sts_token(other)["token"]
        resp = requests.get(f"{lakefs_server.api}/user", headers=bearer(token), timeout=10)
        assert resp.status_code == 401, resp.text
        assert "message" in resp.json()
    finally:
        stop_server(other.server)


def test_a_token_with_a_short_ttl_expires_at_real_lakefs(lakefs_server, lakests):
    body = sts_token(lakests, ttl_seconds=5)
    assert requests.get(f"{lakefs_server.api}/user", headers=bearer(body["token"]), timeout=10).status_code == 200
    time.sleep(max(0.0, body["token_expiration"] - time.time()) + 1.1)
    resp = requests.get(f"{lakefs_server.api}/user", headers=bearer(body["token"]), timeout=10)
    assert resp.status_code == 401, resp.text


# WIRE §8: the real lakectl ----------------------------------------------------------------------

def test_real_lakectl_with_a_token_cache_creates_a_repository_uploads_and_lists(lakefs_server, lakests, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # The user's real login, as JSON, then lakectl's token cache in WIRE §8's format.
    out = json.loads(lakests_login(lakests, home, "json"))
    assert out["username"] == ADMIN
    write_lakectl_token_cache(home, out["token"], out["token_expiration"])
    assert not (home / ".lakectl.yaml").exists()  # no access key anywhere: lakectl uses the token

    who = lakefs_server.lakectl("auth", "users", "list", home=home)
    assert ADMIN in who.stdout
    lakefs_server.lakectl("repo", "create", "lakefs://lakectl-repo", "local://lakectl-repo", home=home)
    data = tmp_path / "hello.txt"
    data.write_bytes(b"hello from lakectl with a lakests token\n")
    lakefs_server.lakectl("fs", "upload", "--source", str(data), "lakefs://lakectl-repo/main/dir/hello.txt", home=home)
    listing = lakefs_server.lakectl("fs", "ls", "lakefs://lakectl-repo/main/dir/", home=home)
    assert "hello.txt" in listing.stdout
    cat = lakefs_server.lakectl("fs", "cat", "lakefs://lakectl-repo/main/dir/hello.txt", home=home)
    assert cat.stdout == data.read_text()
    # The object really is in lakeFS (checked with the admin's access key, not the token).
    stat = requests.get(f"{lakefs_server.api}/repositories/lakectl-repo/refs/main/objects/stat",
                        params={"path": "dir/hello.txt"}, auth=lakefs_server.basic_auth, timeout=10)
    assert stat.status_code == 200 and stat.json()["size_bytes"] == data.stat().st_size


def test_real_lakectl_without_token_or_keys_is_refused(lakefs_server, tmp_path):
    home = tmp_path / "empty-home"
    home.mkdir()
    proc = lakefs_server.lakectl("repo", "list", home=home, check=False)
    assert proc.returncode != 0
    assert "401" in proc.stderr or "nauthorized" in proc.stderr, proc.stderr


def test_real_lakectl_sends_an_expired_cached_token_and_lakefs_refuses_it(lakefs_server, lakests, tmp_path):
    """lakectl does not check expiration_time itself: lakeFS is the judge (WIRE §4, §8)."""
    home = tmp_path / "home"
    home.mkdir()
    expired = forge(exp=int(time.time()) - 60)
    write_lakectl_token_cache(home, expired, int(time.time()) + 3600)
    proc = lakefs_server.lakectl("repo", "list", home=home, check=False)
    assert proc.returncode != 0
    assert "401" in proc.stderr or "nauthorized" in proc.stderr, proc.stderr
    good = sts_token(lakests)
    write_lakectl_token_cache(home, good["token"], good["token_expiration"])
    assert lakefs_server.lakectl("repo", "list", home=home).returncode == 0


def test_real_lakectl_runs_plugins_from_path(lakefs_server, tmp_path):
    """WIRE §8: an unknown command NAME runs lakectl-NAME from PATH with the remaining
    arguments and the environment, and lakectl exits with its status."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    plugin = bindir / "lakectl-lakests-probe"
    plugin.write_text("#!/bin/sh\nprintf 'args=%s|' \"$@\"\nprintf 'endpoint=%s\\n' \"$LAKECTL_SERVER_ENDPOINT_URL\"\n"
                      "read line; echo \"stdin=$line\" >&2\nexit 7\n")
    plugin.chmod(0o755)
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    proc = subprocess.run([str(lakefs_server.bin_dir / "lakectl"), "lakests-probe", "one", "--two"],
                          input="from-stdin\n", capture_output=True, text=True, timeout=30,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("LAKECTL_")},
                               **env, "HOME": str(tmp_path), "LAKECTL_SERVER_ENDPOINT_URL": lakefs_server.base})
    assert proc.returncode == 7, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == f"args=one|args=--two|endpoint={lakefs_server.base}\n"
    assert "stdin=from-stdin" in proc.stderr


# WIRE §1, §8: the lakefs Python SDK from the exported environment --------------------------------

def test_lakefs_sdk_with_the_env_lakests_login_exports(lakefs_server, lakests, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    exports = {}
    for line in lakests_login(lakests, home, "env").splitlines():
        name, value = line.removeprefix("export ").split("=", 1)
        exports[name] = shlex.split(value)[0]
    assert set(exports) == {"LAKECTL_SERVER_ENDPOINT_URL", "LAKECTL_CREDENTIALS_SESSION_TOKEN"}
    # The login ran against lakests's STS role, so that is the endpoint it exports; the data is in
    # lakeFS (WIRE §7), where the same token is valid.
    assert exports["LAKECTL_SERVER_ENDPOINT_URL"] == lakests.base
    monkeypatch.setenv("LAKECTL_SERVER_ENDPOINT_URL", lakefs_server.base)
    monkeypatch.setenv("LAKECTL_CREDENTIALS_SESSION_TOKEN", exports["LAKECTL_CREDENTIALS_SESSION_TOKEN"])
    monkeypatch.setenv("LAKECTL_CONFIG_FILE", str(tmp_path / "no-lakectl.yaml"))
    monkeypatch.setenv("HOME", str(home))
    client = lakefs.Client()
    assert client.sdk_client.auth_api.get_current_user().user.id == ADMIN
    assert client.storage_config.blockstore_type == "local"
    repo = lakefs.repository("sdk-repo", client=client).create(storage_namespace="local://sdk-repo")
    main = repo.branch("main")
    main.object("data/one.csv").upload(data=b"a,b\n1,2\n")
    assert [o.path for o in main.objects(prefix="data/")] == ["data/one.csv"]
    assert main.object("data/one.csv").reader(mode="rb").read() == b"a,b\n1,2\n"


# WIRE §5: lakeFS's configuration -------------------------------------------------------------------

def test_real_lakefs_takes_the_secret_from_its_environment(tmp_path, lakefs_server, lakests):
    """LAKEFS_AUTH_ENCRYPT_SECRET_KEY instead of the YAML key: tokens lakests mints still verify.
    And WIRE §8: lakectl's token cache is one file for all servers, not keyed by endpoint: the
    same cache works against both lakeFS servers that share the secret."""
    server = LakeFS(tmp_path / "lakefs-env", SECRET, secret_in_env=True).start()
    try:
        server.setup_admin(ADMIN)
        body = sts_token(lakests)
        resp = requests.get(f"{server.api}/user", headers=bearer(body["token"]), timeout=10)
        assert resp.status_code == 200 and resp.json()["user"]["id"] == ADMIN, resp.text
        home = tmp_path / "home"
        home.mkdir()
        write_lakectl_token_cache(home, body["token"], body["token_expiration"])
        for target in (server, lakefs_server):
            assert target.lakectl("repo", "list", home=home).returncode == 0
    finally:
        server.stop()


def test_real_lakefs_refuses_a_lakests_only_key_in_its_configuration(tmp_path):
    """WIRE §5: lakeFS refuses unknown keys, so lakests-only keys must not live under lakeFS's
    `auth.` in a shared file."""
    server = LakeFS(tmp_path / "lakefs-unknown", SECRET, config={"auth": {"sts": {"default_ttl_seconds": 3600}}})
    proc = server.spawn()
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.stop(check=False)
        pytest.fail(f"lakeFS started with an unknown key auth.sts:\n{server.log_text()[-3000:]}")
    assert code != 0
    assert "sts" in server.log_text(), server.log_text()[-3000:]


def test_real_lakefs_basic_mode_ignores_auth_api_endpoint(tmp_path, lakests):
    """WIRE §5: with auth.ui_config.rbac `none` (the default) lakeFS ignores auth.api.endpoint
    entirely: here it names a closed port, and lakeFS still sets up and serves its own admin."""
    server = LakeFS(tmp_path / "lakefs-rbac-none", SECRET,
                    config={"auth": {"api": {"endpoint": "http://127.0.0.1:9/api/v1"}, "ui_config": {"rbac": "none"}}})
    server.start()
    try:
        server.setup_admin(ADMIN)
        token = sts_token(lakests)["token"]
        resp = requests.get(f"{server.api}/user", headers=bearer(token), timeout=10)
        assert resp.status_code == 200, resp.text
    finally:
        server.stop()


def test_a_missing_lakefs_build_fails_the_tests_loudly(monkeypatch, tmp_path):
    """No silent skip: without the binaries every real-lakeFS test fails, naming the command."""
    monkeypatch.setenv("LAKESTS_TEST_LAKEFS_DIR", str(tmp_path / "nothing-here"))
    with pytest.raises(pytest.fail.Exception, match="scripts/lakefs-build.sh"):
        lakefs_bin_dir()
