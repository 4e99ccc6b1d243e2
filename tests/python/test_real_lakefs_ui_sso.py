"""Single sign-on in the lakeFS web UI (issue 16, point 4), with the REAL lakeFS (v1.84.0, built
by scripts/lakefs-build.sh), `lakests serve` (authorization API + authenticator with
`authenticator.ui_sso` + the development IdP, interactive) and headless Chromium
(tests/login-browser/ui-sso.mjs).

lakeFS is configured with what `lakests lakefs-config` prints, its `auth.ui_config` keys
included. lakests listens on another port of the same host as lakeFS: cookies are not isolated
by port, so the host-only `internal_auth_session` lakests sets is the one lakeFS reads.

The story: a new employee opens lakeFS's login page, clicks the fallback button, lands on the
provider's sign-in page, signs in, arrives in the lakeFS UI logged in under her name (the UI's own
`GET /api/v1/user` with the browser's cookie), sees the repository her group may read, is
refused a write her policy denies, logs out with the navbar and is logged out. The screenshots go
to docs/images/ui-sso-*.png (docs/lakefs-ui-sso.md shows them). Then lakeFS itself refuses the
same cookie re-signed with another key, altered, or with an expired timestamp.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import pytest
import requests
import yaml

from conftest import ROOT, Server, clean_env, free_port, lakests_bin, stop_server, wait_healthy
from real_lakefs import LakeFS, lakefs_version, yaml_text

SECRET = "real-lakefs-ui-sso-suite-secret-shared-by-lakefs-and-lakests-64-bytes"
UI_SSO = ROOT / "tests" / "login-browser" / "ui-sso.mjs"
SHOTS = ROOT / "docs" / "images"
CLIENT_ID = "lakefs"
CLI_REDIRECT = "http://127.0.0.1:8085/callback"
NINA = "nina@example.com"
IDP_USERS = [
    {"sub": "admin", "email": "admin@example.com", "name": "Ada Admin", "groups": ["Admins"]},
    {"sub": "nina", "email": NINA, "name": "Nina New", "groups": ["Viewers"]},
]
REPO = "ui-sso-repo"
BUTTON = "Sign in with single sign-on"
ALL_ACCESS = [{"effect": "allow", "action": ["fs:*", "auth:*", "ci:*", "retention:*", "branches:*", "pr:*"],
               "resource": "*"}]
FS_READ = [{"effect": "allow", "action": ["fs:List*", "fs:Read*"], "resource": "*"}]


def lakefs_ui_bin_dir():
    """The lakeFS built WITH its web UI by scripts/lakefs-ui-build.sh (a plain `go build` from the
    module proxy serves "lakeFS UI Not Built"). LAKESTS_TEST_LAKEFS_UI_DIR overrides."""
    from pathlib import Path
    explicit = os.environ.get("LAKESTS_TEST_LAKEFS_UI_DIR")
    if explicit:
        path = Path(explicit)
    else:
        cache = os.environ.get("LAKESTS_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lakests")
        path = Path(cache) / f"lakefs-ui-{lakefs_version()}"
    if not os.access(path / "lakefs", os.X_OK):
        pytest.fail(f"lakeFS with its web UI is not built at {path}: run scripts/lakefs-ui-build.sh "
                    "(or set LAKESTS_TEST_LAKEFS_UI_DIR)")
    return path


class UiSystem:
    def __init__(self, lakests: Server, config, issuer: str, tmp):
        self.lakests, self.config, self.issuer, self.tmp = lakests, config, issuer, tmp
        self.lakefs: LakeFS | None = None
        self.printed = ""

    def cli(self, *args) -> str:
        proc = subprocess.run([lakests_bin(), *args, "--config", str(self.config)], capture_output=True,
                              text=True, env=clean_env(), timeout=60, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"lakests {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
        return proc.stdout


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui-sso")
    authn_port, idp_port, lakefs_port = free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{idp_port}"
    public = f"http://127.0.0.1:{authn_port}"
    lakefs_url = f"http://127.0.0.1:{lakefs_port}"
    doc = {
        "authenticator": {
            "listen_address": f"127.0.0.1:{authn_port}",
            "providers": [{"name": "corp", "issuer": issuer, "client_id": CLIENT_ID,
                           "redirect_uris": [CLI_REDIRECT], "allow_loopback_any_port": True, "pkce": "state",
                           "provision_users": True, "username_claim": "email", "groups_claim": "groups"}],
            "ui_sso": {"enabled": True, "lakefs_url": lakefs_url, "public_url": public},
        },
        "authorization": {"enabled": True},
        "data_dir": str(tmp / "data"),
        "auth": {"encrypt": {"secret_key": SECRET}, "sts": {"enabled": False}},
        "idp": {"enabled": True, "listen_address": f"127.0.0.1:{idp_port}", "issuer": issuer,
                "interactive": True, "users": IDP_USERS,
                "clients": [{"client_id": CLIENT_ID,
                             "redirect_uris": [CLI_REDIRECT, f"{public}/lakests/ui/callback"]}]},
    }
    config = tmp / "lakests.yaml"
    config.write_text(yaml_text(doc) + "\n")
    log = tmp / "lakests.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([lakests_bin(), "serve", "--config", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, env=clean_env())
    lakests = Server(proc, public, config, log)
    lakefs_server = None
    try:
        wait_healthy(f"{public}/api/v1/healthcheck", proc, log)
        system = UiSystem(lakests, config, issuer, tmp)
        system.cli("policies", "add", "AllAccess", "--statement", json.dumps(ALL_ACCESS))
        system.cli("policies", "add", "FSReadAll", "--statement", json.dumps(FS_READ))
        for group, policy in (("Admins", "AllAccess"), ("Viewers", "FSReadAll")):
            system.cli("groups", "add", group)
            system.cli("groups", "attach-policy", group, policy)
        system.cli("users", "add", "admin@example.com", "--external-id", "corp:admin", "--group", "Admins")
        keys = json.loads(system.cli("credentials", "create", "admin@example.com", "-o", "json"))
        # lakeFS's side: what `lakests lakefs-config` prints, pasted into lakeFS's configuration.
        system.printed = system.cli("lakefs-config", "--show-secret")
        lakefs_conf = yaml.safe_load(system.printed)
        lakefs_conf["auth"]["cache"] = {"enabled": True, "ttl": "5s", "jitter": "1s"}
        lakefs_server = LakeFS(tmp / "lakefs", SECRET, config=lakefs_conf, port=lakefs_port)
        lakefs_server.bin_dir = lakefs_ui_bin_dir()
        lakefs_server.start()
        system.lakefs = lakefs_server
        resp = requests.post(f"{lakefs_server.api}/setup_lakefs", json={"username": "admin"}, timeout=10)
        assert resp.status_code == 200, resp.text
        resp = requests.post(f"{lakefs_server.api}/repositories", timeout=30,
                             auth=(keys["access_key_id"], keys["secret_access_key"]),
                             json={"name": REPO, "storage_namespace": f"local://{REPO}", "default_branch": "main"})
        assert resp.status_code == 201, resp.text
        yield system
    finally:
        if lakefs_server is not None:
            lakefs_server.stop()
        stop_server(lakests)


def test_lakefs_config_prints_the_ui_config_keys_of_this_deployment(ui):
    conf = yaml.safe_load(ui.printed)["auth"]["ui_config"]
    public = ui.lakests.base
    assert conf["fallback_login_url"] == f"{public}/lakests/ui/login", ui.printed
    assert conf["login_url"] == f"{public}/lakests/ui/login"
    assert conf["logout_url"] == f"{public}/lakests/ui/logout"
    assert conf["login_cookie_names"] == ["internal_auth_session"]
    assert conf["fallback_login_label"] == BUTTON
    # lakeFS serves them to its UI.
    setup = requests.get(f"{ui.lakefs.api}/setup_lakefs", timeout=10).json()
    assert setup["login_config"]["fallback_login_url"] == conf["fallback_login_url"], setup


def resign(cookie: str, secret: bytes, ts: int | None = None, flip: bool = False) -> str:
    """The same session re-signed as gorilla/securecookie signs (the test's own HMAC, to forge)."""
    raw = base64.urlsafe_b64decode(cookie)
    old_ts, value, _mac = raw.split(b"|", 2)
    stamp = str(ts).encode() if ts is not None else old_ts
    mac = hmac.new(secret, b"internal_auth_session|" + stamp + b"|" + value, hashlib.sha256).digest()
    if flip:
        mac = bytes([mac[0] ^ 1]) + mac[1:]
    return base64.urlsafe_b64encode(stamp + b"|" + value + b"|" + mac).decode()


def lakefs_user(ui, cookie: str) -> tuple[int, str]:
    resp = requests.get(f"{ui.lakefs.api}/user", cookies={"internal_auth_session": cookie}, timeout=10)
    body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
    return resp.status_code, (body.get("user") or {}).get("id", "")


def test_a_new_employee_signs_in_to_the_lakefs_ui_through_the_identity_provider(ui):
    assert NINA not in ui.cli("users", "list"), "nina must not exist before her first login"
    SHOTS.mkdir(parents=True, exist_ok=True)
    result_file = ui.tmp / "ui-sso-result.json"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LAKESTS_", "LAKECTL_", "LAKEFS_")) and not k.lower().endswith("_proxy")}
    if os.environ.get("LAKESTS_TEST_CHROMIUM"):
        env["LAKESTS_TEST_CHROMIUM"] = os.environ["LAKESTS_TEST_CHROMIUM"]
    env.update(UI_SSO_LAKEFS=ui.lakefs.base, UI_SSO_BUTTON=BUTTON, UI_SSO_SIGN_IN_AS="Nina New",
               UI_SSO_REPO=REPO, UI_SSO_SHOTS=str(SHOTS), UI_SSO_RESULT=str(result_file))
    proc = subprocess.run(["node", str(UI_SSO)], capture_output=True, text=True, env=env, timeout=200,
                          cwd=UI_SSO.parent, stdin=subprocess.DEVNULL)
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    assert proc.returncode == 0, f"browser: {proc.stderr}\nresult: {result}\nlakeFS log:\n{ui.lakefs.log_text()[-3000:]}"

    # Steps 1-2: lakeFS's login page sent the browser to the provider's page.
    assert result["idpOrigin"] == ui.issuer, result
    # Step 3: back in the lakeFS UI, logged in under her name by the UI's own check.
    assert result["user"] == {"status": 200, "id": NINA}, result
    cookie = result["cookie"]
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/", cookie
    assert cookie["hostOnly"] and not cookie["secure"], cookie
    assert lakefs_user(ui, cookie["value"]) == (200, NINA)
    # Provisioned as the authorization API does, with her group from the claim.
    user = json.loads(ui.cli("users", "show", NINA, "-o", "json"))
    assert user["groups"] == ["Viewers"], user
    # Her group may read the repository, and not write to it.
    assert result["repoRead"] == 200, result
    assert result["write"]["status"] in (401, 403), result
    # Logged out with the navbar: lakests cleared the cookie, lakeFS sees nobody.
    assert result["loggedOutBy"] == "navbar", result
    assert result["afterLogout"]["id"] == "", result
    assert result["cookieAfterLogout"] is False, result
    for name in ("ui-sso-1-lakefs-login.png", "ui-sso-2-idp-sign-in.png", "ui-sso-3-lakefs-logged-in.png",
                 "ui-sso-4-logged-out.png"):
        assert (SHOTS / name).stat().st_size > 1000, name

    # Point 3 against lakeFS itself: the cookie re-signed with another key, altered, or with a
    # timestamp past securecookie's 30 days is ignored (anonymous), the genuine one still works.
    value = cookie["value"]
    assert lakefs_user(ui, resign(value, SECRET.encode())) == (200, NINA), "the re-signing is faithful"
    assert lakefs_user(ui, resign(value, b"another-secret-that-lakefs-does-not-have-0123")) == (200, "")
    assert lakefs_user(ui, resign(value, SECRET.encode(), flip=True)) == (200, "")
    assert lakefs_user(ui, resign(value, SECRET.encode(), ts=int(time.time()) - 31 * 24 * 3600)) == (200, "")

    # Nothing secret in lakests's log: no cookie, no code or state values.
    log = ui.lakests.log.read_text(errors="replace")
    assert value not in log and SECRET not in log
    assert "code=" not in log and "state=" not in log
