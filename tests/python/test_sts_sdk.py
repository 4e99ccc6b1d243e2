"""The official lakeFS Python SDK against the lakests STS server, and lakests tokens checked by an
independent JWT implementation with lakeFS's rules (WIRE.md §1, §4)."""

import time

import jwt
import lakefs
import lakefs.client
import pytest
import requests
from lakefs.exceptions import NotAuthorizedException

from conftest import SECRET

REDIRECT = "http://127.0.0.1:8085/callback"


def test_from_web_identity_yields_a_client_for_the_mapped_user(sts_server, standin):
    client = lakefs.client.from_web_identity(code="code-1", state="state-1", redirect_uri=REDIRECT,
                                             ttl_seconds=900, host=sts_server.base)
    user = client.sdk_client.auth_api.get_current_user().user
    assert user.id == "alice"
    assert user.email == "alice@example.com"
    assert user.friendly_name == "Alice"
    # The SDK's request reached the authenticator as lakeFS forwards it.
    assert standin.requests == [{"code": "code-1", "state": "state-1", "redirect_uri": REDIRECT}]


def test_a_session_token_from_the_environment_works_in_a_plain_client(sts_server, monkeypatch):
    resp = requests.post(f"{sts_server.base}/api/v1/sts/login", timeout=10,
                         json={"code": "c", "state": "s", "redirect_uri": REDIRECT})
    assert resp.status_code == 200, resp.text
    monkeypatch.setenv("LAKECTL_SERVER_ENDPOINT_URL", sts_server.base)
    monkeypatch.setenv("LAKECTL_CREDENTIALS_SESSION_TOKEN", resp.json()["token"])
    monkeypatch.setenv("LAKECTL_CONFIG_FILE", "/nonexistent/lakectl.yaml")
    client = lakefs.Client()
    assert client.sdk_client.auth_api.get_current_user().user.id == "alice"


def test_tokens_verify_under_lakefs_rules_with_pyjwt(sts_server):
    before = int(time.time())
    resp = requests.post(f"{sts_server.base}/api/v1/sts/login", timeout=10,
                         json={"code": "c", "state": "s", "redirect_uri": REDIRECT, "ttl_seconds": 120})
    assert resp.status_code == 200
    body = resp.json()
    token = body["token"]
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="login",
                        options={"require": ["exp", "sub", "aud", "iat", "jti", "iss"]})
    assert claims["sub"] == "alice"
    assert claims["iss"] == "auth"
    assert claims["aud"] == "login"
    assert body["token_expiration"] == claims["exp"]
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 120
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-that-is-long-enough-for-hs256", algorithms=["HS256"], audience="login")


def test_lakests_rejects_tokens_pyjwt_forges_wrongly(sts_server):
    now = int(time.time())
    good = {"jti": "j", "iss": "auth", "sub": "alice", "aud": "login", "iat": now, "exp": now + 60}
    forged = {
        "wrong secret": jwt.encode(good, "not-the-secret-but-as-long-as-the-real-one", algorithm="HS256"),
        "alg none": jwt.encode(good, None, algorithm="none"),
        "expired": jwt.encode({**good, "exp": now - 5}, SECRET, algorithm="HS256"),
        "aud other": jwt.encode({**good, "aud": "other"}, SECRET, algorithm="HS256"),
        # lakeFS's LoginClaims.Audience is a string: an array is not a lakeFS token.
        "aud array": jwt.encode({**good, "aud": ["login"]}, SECRET, algorithm="HS256"),
    }
    for name, token in forged.items():
        resp = requests.get(f"{sts_server.base}/api/v1/user", timeout=10,
                            headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, name
        assert set(resp.json()) == {"message"}, name
    ok = requests.get(f"{sts_server.base}/api/v1/user", timeout=10,
                      headers={"Authorization": f"Bearer {jwt.encode(good, SECRET, algorithm='HS256')}"})
    assert ok.status_code == 200
    empty_aud = jwt.encode({**good, "aud": ""}, SECRET, algorithm="HS256")
    ok = requests.get(f"{sts_server.base}/api/v1/user", timeout=10,
                      headers={"Authorization": f"Bearer {empty_aud}"})
    assert ok.status_code == 200, "an empty aud is accepted, as lakeFS accepts it"


def test_an_unmapped_identity_is_not_authorized_in_the_sdk(sts_server, standin):
    standin.claims = {"sub": "stranger"}
    with pytest.raises(NotAuthorizedException):
        lakefs.client.from_web_identity(code="c", state="s", redirect_uri=REDIRECT, host=sts_server.base)


def _token(sts_server) -> str:
    resp = requests.post(f"{sts_server.base}/api/v1/sts/login", timeout=10,
                         json={"code": "c", "state": "s", "redirect_uri": REDIRECT})
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def test_the_sdk_reads_version_and_storage_config_and_sees_lakests(sts_server):
    client = lakefs.Client(host=sts_server.base, access_token=_token(sts_server))
    assert client.version != ""
    storage = client.storage_config
    assert storage.blockstore_type == "none"
    assert storage.pre_sign_support is False
    assert storage.import_support is False
    conf = client.sdk_client.config_api.get_config()
    assert conf.version_config.version_context == "lakests"
    assert "holds no data" in conf.storage_config.blockstore_description


def test_config_needs_a_token_like_lakefs(sts_server):
    resp = requests.get(f"{sts_server.base}/api/v1/config", timeout=10)
    assert resp.status_code == 401
    assert set(resp.json()) == {"message"}


def test_friendly_name_defaults_to_the_username_like_lakefs(sts_server, tmp_path):
    from conftest import run_cli
    run_cli("users", "add", "bob", "--external-id", "bob-ext", config=sts_server.config)
    now = int(time.time())
    token = jwt.encode({"jti": "j", "iss": "auth", "sub": "bob", "aud": "login", "iat": now,
                        "exp": now + 60}, SECRET, algorithm="HS256")
    client = lakefs.Client(host=sts_server.base, access_token=token)
    user = client.sdk_client.auth_api.get_current_user().user
    assert user.id == "bob"
    assert user.friendly_name == "bob"
