"""Issue 3 acceptance with the STS server: the real lakeFS SDK's `from_web_identity`, with a code
issued by panva's `oidc-provider` (tests/oidc-provider), yields a token for the mapped user.

The whole chain is real: oidc-provider (node) <- lakests authenticator role <- lakests STS role
<- lakefs SDK."""

import base64
import hashlib
import os
import secrets
import subprocess
import urllib.parse
from pathlib import Path

import lakefs
import lakefs.client
import pytest
import requests

from conftest import ROOT, SECRET, free_port, run_cli, start_server, stop_server

FIXTURE = ROOT / "tests" / "oidc-provider"
REDIRECT = "http://127.0.0.1:8085/callback"


@pytest.fixture
def oidc_provider():
    if not (FIXTURE / "node_modules").is_dir():
        pytest.fail(f"oidc-provider is not installed: run `npm ci --prefix {FIXTURE}`")
    proc = subprocess.Popen(["node", str(FIXTURE / "server.mjs"), "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        pytest.fail(f"oidc-provider did not start: {line!r}")
    yield line.split(" ", 1)[1]
    proc.kill()
    proc.wait(timeout=10)


def code_from_oidc_provider(issuer: str, state: str, challenge: str, login_hint: str) -> str:
    """Follows the provider's redirects with a cookie jar (its test interaction signs in the
    login_hint account) until the redirect URI, and returns the code."""
    session = requests.Session()
    session.trust_env = False
    url = f"{issuer}/auth?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": "lakests-public", "redirect_uri": REDIRECT,
        "scope": "openid profile email", "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256", "login_hint": login_hint,
    })
    for _ in range(20):
        resp = session.get(url, allow_redirects=False, timeout=10)
        assert resp.status_code in (302, 303), f"{resp.status_code}: {resp.text[:300]}"
        url = urllib.parse.urljoin(url, resp.headers["Location"])
        if url.startswith(REDIRECT):
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
            assert "error" not in query, query
            assert query["state"] == state
            return query["code"]
    pytest.fail("oidc-provider did not redirect back within 20 hops")


def test_from_web_identity_with_a_code_from_oidc_provider(tmp_path, oidc_provider):
    port = free_port()
    text = (f'listen_address: "127.0.0.1:{port}"\n'
            f'data_dir: "{tmp_path / "data"}"\n'
            "auth:\n"
            f"  encrypt:\n    secret_key: {SECRET}\n"
            "authenticator:\n"
            f'  listen_address: "127.0.0.1:{free_port()}"\n'
            "  providers:\n"
            f"    - name: panva\n      issuer: {oidc_provider}\n      client_id: lakests-public\n"
            f"      redirect_uris: ['{REDIRECT}']\n")
    (tmp_path / "lakests.yaml").write_text(text)
    # The authenticator namespaces external ids by provider: <provider name>:<sub>.
    run_cli("users", "add", "alice", "--external-id", "panva:alice", config=tmp_path / "lakests.yaml")
    server = start_server(tmp_path, text)
    try:
        # lakeFS's documented flow: the state is the PKCE verifier.
        verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        code = code_from_oidc_provider(oidc_provider, verifier, challenge, "alice")
        client = lakefs.client.from_web_identity(code=code, state=verifier, redirect_uri=REDIRECT,
                                                 ttl_seconds=600, host=server.base)
        assert client.sdk_client.auth_api.get_current_user().user.id == "alice"

        # The code is single use at the provider: a replay is refused.
        with pytest.raises(lakefs.exceptions.NotAuthorizedException):
            lakefs.client.from_web_identity(code=code, state=verifier, redirect_uri=REDIRECT, host=server.base)

        # bob exists at the provider but is not mapped to a lakeFS user.
        verifier = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        code = code_from_oidc_provider(oidc_provider, verifier, challenge, "bob")
        with pytest.raises(lakefs.exceptions.NotAuthorizedException):
            lakefs.client.from_web_identity(code=code, state=verifier, redirect_uri=REDIRECT, host=server.base)
    finally:
        stop_server(server)
