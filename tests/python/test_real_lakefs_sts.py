"""lakeFS's OWN `/api/v1/sts/login` on a REAL lakeFS OSS server, with
`auth.authentication_api.endpoint` pointing at an authenticator (WIRE.md §1-§3): the lakeFS
Enterprise-style deployment (authenticator only, users in lakeFS's own store).

Two authenticators are used: the real lakests authenticator with the development IdP (the
deployment a user would run), and a scripted one (a small HTTP server here) to make lakeFS meet
every answer WIRE §2 describes: the thing under test in those cases is lakeFS, not lakests.
"""

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import lakefs.client
import lakefs.exceptions
import pytest
import requests

from conftest import ROOT, lakests_bin, stop_server
from real_lakefs import ADMIN, LakeFS, devidp_code, start_lakests

SECRET = "real-lakefs-sts-suite-secret-key-shared-with-lakests"


class ScriptedAuthenticator:
    """Answers POST .../sts/login with the status and body set in `answer`, or drops the
    connection when `answer` is "drop"; with `redirect_to` set, answers that path's requests
    with `answer` and every other with 307 to it. Records the path, headers and body lakeFS
    sent."""

    def __init__(self):
        self.answer = (200, {"claims": {"sub": "alice"}})
        self.redirect_to = None
        self.seen = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                outer.seen.append({"path": self.path, "headers": dict(self.headers),
                                   "body": json.loads(self.rfile.read(length) or b"null")})
                if outer.redirect_to and self.path != outer.redirect_to:
                    self.send_response(307)
                    self.send_header("Location", outer.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if outer.answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, body = outer.answer
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def lakests(tmp_path_factory):
    """lakests's authenticator + development IdP (its STS role is not used by lakeFS here).
    alice and carol exist at the IdP; only the claims differ."""
    system = start_lakests(
        tmp_path_factory.mktemp("lakests"), SECRET,
        users=[(ADMIN, "dev:alice", ["admins"])],
        idp_users=[{"sub": "alice", "email": "alice@example.com", "groups": ["admins"], "claims": {"department": "data"}},
                   {"sub": "carol", "email": "carol@example.com", "claims": {"department": "finance"}}])
    yield system
    stop_server(system.server)


@pytest.fixture(scope="module")
def lakefs_with_lakests_authenticator(tmp_path_factory, lakests):
    # validate_id_token_claims with a mixed-case claim name: lakeFS (viper) lower-cases map keys,
    # so it is matched against the claim `department` (WIRE §5).
    server = LakeFS(tmp_path_factory.mktemp("lakefs-authn"), SECRET, config={"auth": {
        "authentication_api": {"endpoint": lakests.authenticator},
        "cookie_auth_verification": {"validate_id_token_claims": {"Department": "data"}},
    }}).start()
    server.setup_admin(ADMIN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scripted():
    s = ScriptedAuthenticator()
    yield s
    s.close()


@pytest.fixture(scope="module")
def lakefs_with_scripted_authenticator(tmp_path_factory, scripted):
    server = LakeFS(tmp_path_factory.mktemp("lakefs-scripted"), SECRET,
                    config={"auth": {"authentication_api": {"endpoint": scripted.url}}}).start()
    server.setup_admin(ADMIN)
    yield server
    server.stop()


def lakefs_sts_login(server, body: dict) -> requests.Response:
    return requests.post(f"{server.api}/sts/login", json=body, timeout=30)


def test_lakefs_oss_answers_501_for_a_mapped_user_in_basic_mode(lakefs_with_lakests_authenticator, lakests):
    """Deployment 3 on lakeFS OSS: the code is redeemed (lakests's authenticator answers 200
    with alice's claims), the claim check passes, and lakeFS OSS's basic auth cannot look a user
    up by external id: 501. lakeFS Enterprise (or OSS with an authorization API) is needed."""
    code, state = devidp_code(lakests, "alice")
    resp = lakefs_sts_login(lakefs_with_lakests_authenticator,
                            {"code": code, "state": state, "redirect_uri": lakests.redirect, "ttl_seconds": 600})
    assert resp.status_code == 501, resp.text
    assert set(resp.json()) == {"message"}


def test_the_lakefs_sdk_meets_the_same_501(lakefs_with_lakests_authenticator, lakests):
    code, state = devidp_code(lakests, "alice")
    with pytest.raises(lakefs.exceptions.ServerException) as info:
        lakefs.client.from_web_identity(code=code, state=state, redirect_uri=lakests.redirect,
                                        ttl_seconds=600, host=lakefs_with_lakests_authenticator.base)
    assert info.value.status_code == 501


def test_lakefs_refuses_claims_that_fail_validate_id_token_claims(lakefs_with_lakests_authenticator, lakests):
    """carol's code is good (the authenticator answers 200) but department=finance: 401 (WIRE §2.2)."""
    code, state = devidp_code(lakests, "carol")
    resp = lakefs_sts_login(lakefs_with_lakests_authenticator,
                            {"code": code, "state": state, "redirect_uri": lakests.redirect})
    assert resp.status_code == 401, resp.text
    assert set(resp.json()) == {"message"}


def test_lakefs_maps_the_authenticators_401_for_a_bad_code(lakefs_with_lakests_authenticator, lakests):
    code, state = devidp_code(lakests, "alice")
    resp = lakefs_sts_login(lakefs_with_lakests_authenticator,
                            {"code": code + "x", "state": state, "redirect_uri": lakests.redirect})
    assert resp.status_code == 401, resp.text
    # The same code once more: spent at the IdP, refused again.
    resp = lakefs_sts_login(lakefs_with_lakests_authenticator,
                            {"code": code, "state": state, "redirect_uri": lakests.redirect})
    assert resp.status_code in (401, 501), resp.text


@pytest.mark.parametrize("answer, status", [
    ((400, {"message": "bad request"}), 400),
    ((401, {"message": "refused"}), 401),
    ((409, {"message": "conflict"}), 500),
    ((503, {"message": "unavailable"}), 500),
    ((200, {"claims": {"email": "no-sub@example.com"}}), 401),
    ((200, {"claims": {"sub": "alice"}}), 501),
    ("drop", 500),
])
def test_lakefs_maps_each_authenticator_answer_as_wire_says(lakefs_with_scripted_authenticator, scripted,
                                                             answer, status):
    scripted.answer = answer
    scripted.redirect_to = None
    scripted.seen.clear()
    resp = lakefs_sts_login(lakefs_with_scripted_authenticator,
                            {"code": "the-code", "state": "the-state", "redirect_uri": "http://127.0.0.1:8085/callback",
                             "ttl_seconds": 60})
    assert resp.status_code == status, (answer, resp.status_code, resp.text)
    assert "message" in resp.json()
    # WIRE §3: POST {endpoint}/sts/login with exactly code, state, redirect_uri (no ttl), and the
    # request id in X-Request-ID.
    assert scripted.seen, "lakeFS did not call the authenticator"
    first = scripted.seen[0]
    assert first["path"] == "/api/v1/sts/login"
    assert first["body"] == {"code": "the-code", "state": "the-state", "redirect_uri": "http://127.0.0.1:8085/callback"}
    assert first["headers"].get("X-Request-Id") or first["headers"].get("X-Request-ID")


@pytest.mark.parametrize("body", [
    {"state": "s", "redirect_uri": "http://127.0.0.1:8085/callback"},
    {"code": "c", "redirect_uri": "http://127.0.0.1:8085/callback"},
    {"code": "c", "state": "s"},
    {"code": "c", "state": "s", "redirect_uri": "http://127.0.0.1:8085/callback", "ttl_seconds": "soon"},
])
def test_lakefs_refuses_malformed_sts_requests_with_400(lakefs_with_scripted_authenticator, scripted, body):
    """WIRE §1: code, state and redirect_uri are required strings, ttl_seconds an integer."""
    scripted.redirect_to = None
    scripted.seen.clear()
    resp = lakefs_sts_login(lakefs_with_scripted_authenticator, body)
    assert resp.status_code == 400, (body, resp.status_code, resp.text)
    assert "message" in resp.json()
    assert scripted.seen == [], "lakeFS called the authenticator for a malformed request"


def test_lakefs_without_an_authentication_api_refuses_sts_login(tmp_path):
    """No auth.authentication_api.endpoint: lakeFS has nobody to redeem the code with and
    answers 501 (its authentication service is a stub that says "not implemented")."""
    server = LakeFS(tmp_path / "lakefs-plain", SECRET).start()
    try:
        resp = lakefs_sts_login(server, {"code": "c", "state": "s", "redirect_uri": "http://127.0.0.1:8085/callback"})
        assert resp.status_code == 501, resp.text
        assert set(resp.json()) == {"message"}
    finally:
        server.stop()


def test_lakefs_answers_500_when_the_authenticator_is_unreachable(tmp_path):
    """WIRE §2.1: a transport error (here a closed port) becomes 500."""
    server = LakeFS(tmp_path / "lakefs-closed", SECRET,
                    config={"auth": {"authentication_api": {"endpoint": "http://127.0.0.1:9/api/v1"}}}).start()
    try:
        resp = lakefs_sts_login(server, {"code": "c", "state": "s", "redirect_uri": "http://127.0.0.1:8085/callback"})
        assert resp.status_code == 500, resp.text
        assert set(resp.json()) == {"message"}
    finally:
        server.stop()


def test_lakests_login_against_lakefs_oss_says_what_lakefs_answered(lakefs_with_lakests_authenticator, lakests,
                                                                     tmp_path):
    """What a user of deployment 3 on lakeFS OSS sees: the real `lakests login --endpoint
    <lakeFS>` with the provider given by flags (lakeFS has no lakests discovery document) signs
    in at the IdP, lakeFS redeems the code through the lakests authenticator, and answers 501;
    the login fails with one line naming that answer, and prints no token."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LAKESTS_", "LAKECTL_", "LAKEFS_")) and not k.lower().endswith("_proxy")
           and k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"), LAKESTS_TEST_LOGIN_HINT="alice")
    port = lakests.redirect.rsplit(":", 1)[1].split("/")[0]
    follow = ROOT / "tests" / "login-browser" / "follow.mjs"
    proc = subprocess.run(
        [lakests_bin(), "login", "--endpoint", lakefs_with_lakests_authenticator.base,
         "--issuer", lakests.idp, "--client-id", "lakests", "--port", port, "--timeout", "60s",
         "--browser-command", f"node {follow}"],
        capture_output=True, text=True, env=env, timeout=90, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0, proc.stdout
    assert proc.stdout == ""
    assert "501" in proc.stderr, proc.stderr



def test_lakefs_follows_an_authenticators_redirect(lakefs_with_scripted_authenticator, scripted):
    """WIRE §2.1: lakeFS's client to the authenticator follows redirects (a 307 keeps the POST
    and its body): the claims from the redirect's target are used."""
    scripted.answer = (200, {"claims": {"sub": "alice"}})
    scripted.redirect_to = "/elsewhere/sts/login"
    scripted.seen.clear()
    try:
        resp = lakefs_sts_login(lakefs_with_scripted_authenticator,
                                {"code": "c", "state": "s", "redirect_uri": "http://127.0.0.1:8085/callback"})
    finally:
        scripted.redirect_to = None
    assert [r["path"] for r in scripted.seen] == ["/api/v1/sts/login", "/elsewhere/sts/login"]
    assert scripted.seen[1]["body"] == {"code": "c", "state": "s", "redirect_uri": "http://127.0.0.1:8085/callback"}
    assert resp.status_code == 501, resp.text  # it went on to the user lookup
