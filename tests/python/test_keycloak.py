"""lakests with a REAL Keycloak (Maven Central, dev mode, H2 file database, our realm
tests/keycloak/realm.json): the real `lakests login` signs users in through Keycloak's own login
form with PKCE (both of lakests's modes), the authenticator maps Keycloak's `groups` claim onto the users it creates, and a
signing-key rotation in Keycloak is picked up by refetching its JWKS, without a restart."""

import html
import json
import os
import re
import subprocess
import sys
import urllib.parse

import pytest
import requests

from conftest import ROOT, SECRET, free_port, lakests_bin, run_cli, start_server, stop_server
from form_browser import sign_in
from keycloak_server import Keycloak, keycloak_home
from real_lakefs import pkce_pair, yaml_text

FORM_BROWSER = ROOT / "tests" / "python" / "form_browser.py"
CLIENT_ID = "lakests"
PASSWORDS = {"alice": "alice-keycloak-password", "bob": "bob-keycloak-password"}


@pytest.fixture(scope="module")
def keycloak(tmp_path_factory):
    kc = Keycloak(tmp_path_factory.mktemp("keycloak"))
    kc.start()
    print(f"\nKeycloak {kc.home.name} answered after {kc.start_seconds:.1f} s", file=sys.stderr)
    yield kc
    kc.stop()


def start_system(tmp, keycloak, pkce: str):
    """lakests: STS + authenticator (provider: Keycloak, PKCE in `pkce` mode); users are created
    at first login, named by preferred_username, grouped by the groups claim."""
    port, auth_port, cb_port = free_port(), free_port(), free_port()
    redirect = f"http://127.0.0.1:{cb_port}/callback"
    doc = {
        "listen_address": f"127.0.0.1:{port}",
        "data_dir": str(tmp / "data"),
        "auth": {
            "encrypt": {"secret_key": SECRET},
            "cookie_auth_verification": {"initial_groups_claim_name": "groups",
                                         "friendly_name_claim_name": "name"},
            "sts": {"auto_create_users": True, "username_claim_name": "preferred_username"},
        },
        "authenticator": {
            "listen_address": f"127.0.0.1:{auth_port}",
            "jwks_refetch_interval": "1s",
            "providers": [{"name": "keycloak", "issuer": keycloak.issuer, "client_id": CLIENT_ID,
                           "scopes": ["openid", "profile", "email"],
                           "redirect_uris": [redirect], "pkce": pkce}],
        },
    }
    server = start_server(tmp, yaml_text(doc) + "\n")
    server.redirect = redirect
    server.cb_port = cb_port
    server.authenticator = f"http://127.0.0.1:{auth_port}"
    return server


@pytest.fixture(scope="module", params=["state", "session"])
def system(request, tmp_path_factory, keycloak):
    """Both PKCE modes: `state` (lakeFS's documented flow, the verifier is the state) and
    `session` (the verifier stays in lakests)."""
    server = start_system(tmp_path_factory.mktemp(f"lakests-kc-{request.param}"), keycloak, request.param)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def state_system(tmp_path_factory, keycloak):
    server = start_system(tmp_path_factory.mktemp("lakests-kc-verifier"), keycloak, "state")
    yield server
    stop_server(server)


def login(system, tmp_path, user: str, *extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LAKESTS_", "LAKECTL_")) and not k.lower().endswith("_proxy")
           and k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / f"config-{user}"),
               LAKESTS_TEST_FORM_USER=user, LAKESTS_TEST_FORM_PASSWORD=PASSWORDS[user])
    proc = subprocess.run(
        [lakests_bin(), "login", "--endpoint", system.base, "--port", str(system.cb_port), "--output", "json",
         "--timeout", "90s", "--browser-command", f"{sys.executable} {FORM_BROWSER}", *extra],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"lakests login as {user} failed: {proc.stderr}"
    return json.loads(proc.stdout)


def user_record(system, username: str) -> dict:
    return json.loads(run_cli("users", "show", username, "-o", "json", config=system.config).stdout)


def jwks_fetches(system) -> int:
    text = requests.get(f"{system.authenticator}/metrics", timeout=10).text
    m = re.search(r'lakests_authenticator_idp_requests_total\{endpoint="jwks"\} (\d+)', text)
    assert m, text
    return int(m.group(1))


def test_lakests_login_through_keycloak_maps_the_groups_claim(system, tmp_path):
    out = login(system, tmp_path, "alice")
    assert out["username"] == "alice"
    resp = requests.get(f"{system.base}/api/v1/user", headers={"Authorization": f"Bearer {out['token']}"}, timeout=10)
    assert resp.status_code == 200 and resp.json()["user"]["id"] == "alice"
    alice = user_record(system, "alice")
    assert sorted(alice["groups"]) == ["admins", "data-engineers"]
    assert alice["email"] == "alice@example.com"
    assert alice["friendly_name"] == "Alice Liddell"
    # Keycloak's sub is its own user id (a UUID): that is the external id.
    assert re.fullmatch(r"keycloak:[0-9a-f-]{36}", alice["external_id"]), alice  # namespaced by provider

    bob = login(system, tmp_path, "bob")
    assert bob["username"] == "bob"
    assert user_record(system, "bob")["groups"] == ["readers"]


def test_keycloak_refuses_a_code_redeemed_with_the_wrong_verifier(state_system, keycloak):
    """PKCE is enforced end to end: the code is redeemed by the authenticator with the verifier
    carried in `state`; another verifier makes Keycloak refuse it, and lakests answers 401."""
    verifier, challenge = pkce_pair()
    url = f"{keycloak.issuer}/protocol/openid-connect/auth?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": state_system.redirect,
        "scope": "openid", "state": verifier, "code_challenge": challenge, "code_challenge_method": "S256"})
    callback = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(sign_in(url, "alice", PASSWORDS["alice"])).query))
    assert callback["state"] == verifier and "code" in callback, callback
    other, _ = pkce_pair()
    resp = requests.post(f"{state_system.base}/api/v1/sts/login", timeout=30,
                         json={"code": callback["code"], "state": other, "redirect_uri": state_system.redirect})
    assert resp.status_code == 401, resp.text
    # lakeFS's {"message"}, plus lakests's stable reason code.
    assert set(resp.json()) == {"message", "reason"} and resp.json()["reason"] == "code_rejected", resp.text


def test_keycloak_refuses_an_authorization_request_without_pkce(state_system, keycloak):
    """Our realm's client requires S256 (as lakests's docs tell operators to configure it)."""
    url = f"{keycloak.issuer}/protocol/openid-connect/auth?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": state_system.redirect,
        "scope": "openid", "state": "no-pkce"})
    resp = requests.get(url, allow_redirects=False, timeout=30)
    assert resp.status_code in (302, 303), resp.text[:500]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(resp.headers["Location"]).query))
    assert query.get("error") == "invalid_request", query


def test_a_keycloak_key_rotation_is_picked_up_by_refetching_the_jwks(system, keycloak, tmp_path):
    login(system, tmp_path, "alice", "--force")  # the authenticator holds Keycloak's current JWKS
    fetched = jwks_fetches(system)
    before, after = keycloak.rotate_signing_key()
    assert after and not (before & after), (before, after)  # the old key is gone from the JWKS
    out = login(system, tmp_path, "alice", "--force")
    assert out["username"] == "alice"
    # Exactly one more JWKS fetch: the unknown kid, not a restart or an expired cache.
    assert jwks_fetches(system) == fetched + 1


def test_a_missing_keycloak_fails_the_tests_loudly(monkeypatch, tmp_path):
    """No silent skip: without Keycloak every Keycloak test fails, naming the command."""
    monkeypatch.setenv("LAKESTS_TEST_KEYCLOAK_HOME", str(tmp_path / "nothing-here"))
    with pytest.raises(pytest.fail.Exception, match="scripts/keycloak-fetch.sh"):
        keycloak_home()


def test_web_ui_logout_ends_the_keycloak_session(keycloak, tmp_path):
    """RP-Initiated Logout against Keycloak, as lakests's web-UI logout sends it: `client_id` and
    `post_logout_redirect_uri`, no `id_token_hint` (lakests keeps no ID token). Keycloak accepts
    both (the realm's client allows its redirect URIs after logout, `post.logout.redirect.uris:
    +`), asks the user to confirm, returns to lakeFS's login page, and its SSO session is gone:
    a new sign-in shows Keycloak's login form again instead of silently giving a code."""
    from form_browser import Browser

    auth_port, lakefs_port = free_port(), free_port()
    base = f"http://127.0.0.1:{auth_port}"
    lakefs_url = f"http://127.0.0.1:{lakefs_port}"  # nothing listens: only the URLs matter
    doc = {
        "listen_address": f"127.0.0.1:{free_port()}",
        "data_dir": str(tmp_path / "data"),
        "auth": {"encrypt": {"secret_key": SECRET}},  # the STS role answers the health check
        "authenticator": {
            "listen_address": f"127.0.0.1:{auth_port}",
            "providers": [{"name": "keycloak", "issuer": keycloak.issuer, "client_id": CLIENT_ID,
                           "scopes": ["openid", "profile", "email"],
                           "redirect_uris": ["http://127.0.0.1:1/callback"], "pkce": "state",
                           "provision_users": True, "username_claim": "preferred_username",
                           "groups_claim": "groups"}],
            "ui_sso": {"enabled": True, "lakefs_url": lakefs_url, "public_url": base},
        },
        "authorization": {"enabled": True},
    }
    server = start_server(tmp_path, yaml_text(doc) + "\n")
    try:
        browser = Browser()
        kc_origin = urllib.parse.urlsplit(keycloak.issuer)[:2]

        def start_login() -> requests.Response:
            """lakests's login route, then Keycloak's authorization endpoint."""
            resp = browser.request("GET", f"{base}/lakests/ui/login?next=%2Frepositories")
            assert resp.status_code == 303, resp.text
            authorize = resp.headers["Location"]
            assert urllib.parse.urlsplit(authorize)[:2] == kc_origin, authorize
            return browser.request("GET", authorize)

        # Sign in with Keycloak's login form.
        page = start_login()
        assert page.status_code == 200 and 'id="kc-form-login"' in page.text, page.text[:500]
        action = html.unescape(re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text).group(1))
        resp = browser.request("POST", action, data={"username": "alice", "password": PASSWORDS["alice"],
                                                     "credentialId": ""})
        assert resp.status_code in (302, 303), resp.text[:300]
        callback = resp.headers["Location"]
        assert callback.startswith(f"{base}/lakests/ui/callback?"), callback
        resp = browser.request("GET", callback)
        assert resp.status_code == 303, resp.text
        assert resp.headers["Location"] == f"{lakefs_url}/repositories"
        assert "internal_auth_session" in browser.jar

        # Control: while Keycloak's SSO session lives, the next sign-in gives a code at once.
        resp = start_login()
        assert resp.status_code in (302, 303), resp.text[:300]
        assert "code=" in resp.headers["Location"], resp.headers["Location"]

        # lakests's logout: the cookie is cleared, the browser goes to Keycloak's end-session
        # endpoint with client_id and post_logout_redirect_uri only.
        resp = browser.request("GET", f"{base}/lakests/ui/logout")
        assert resp.status_code == 303, resp.text
        assert "internal_auth_session" not in browser.jar
        end = urllib.parse.urlsplit(resp.headers["Location"])
        assert end[:2] == kc_origin and end.path.endswith("/protocol/openid-connect/logout"), end
        params = dict(urllib.parse.parse_qsl(end.query))
        assert params == {"client_id": CLIENT_ID, "post_logout_redirect_uri": f"{lakefs_url}/auth/login"}

        # Keycloak accepts them: its logout confirmation page, not an error.
        page = browser.request("GET", resp.headers["Location"])
        assert page.status_code == 200, page.text[:500]
        assert "Invalid" not in page.text and "kc-logout" in page.text, page.text[:2000]
        form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page.text, re.S)
        assert form, page.text[:2000]
        fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2)))
        fields["confirmLogout"] = "Logout"
        resp = browser.request("POST", urllib.parse.urljoin(page.url, html.unescape(form.group(1))), data=fields)
        assert resp.status_code in (302, 303), resp.text[:500]
        assert resp.headers["Location"] == f"{lakefs_url}/auth/login"

        # The session is gone: Keycloak asks for the password again.
        page = start_login()
        assert page.status_code == 200 and 'id="kc-form-login"' in page.text, \
            f"{page.status_code} {page.headers.get('Location')}"
    finally:
        stop_server(server)
