"""lakeFS OSS + lakests, end to end (issue 15, point 2), with the REAL lakeFS and the REAL lakectl.

The deployment of docs/lakefs-oss.md: lakests runs the authenticator and the authorization API on
one listener (with the development IdP as the company's OpenID Provider), and a lakeFS OSS is
configured with what `lakests lakefs-config` prints (`auth.api.endpoint`,
`auth.authentication_api.endpoint`, `auth.ui_config.rbac: external`) and the shared
`auth.encrypt.secret_key`. lakeFS's auth cache is set short (`auth.cache.ttl` 5 s, jitter 1 s)
so that revocations can be waited for.

Every step is one a user or an administrator takes: the admin's bootstrap with `lakests
policies/groups/users/credentials`, `lakests login --endpoint <lakeFS> --authenticator <lakests>`
(its browser the redirect follower), lakectl with the token cache lakests login wrote, the lakefs
SDK from the exported environment, boto3 against lakeFS's S3 gateway with a key lakests issued.
The tests share one deployment and run in file order, as a story: the first login provisions
dana, whose repository the later tests read and write; victor is removed near the end.
"""

import json
import os
import shlex
import subprocess
import time
import urllib.parse

import boto3
import botocore.client
import botocore.exceptions
import jwt
import lakefs
import pytest
import requests
import yaml

from conftest import ROOT, clean_env, free_port, lakests_bin, stop_server, wait_healthy, Server
from real_lakefs import LakeFS, pkce_pair, yaml_text

SECRET = "real-lakefs-oss-suite-secret-shared-by-lakefs-and-lakests-64-bytes-long"
FOLLOW = ROOT / "tests" / "login-browser" / "follow.mjs"
CLIENT_ID = "lakefs"
# lakeFS's auth cache (auth.cache.ttl + up to auth.cache.jitter): how long a revocation may take.
CACHE_TTL, CACHE_JITTER = 5, 1
# What may be added on a loaded machine between "the cache entry expired" and "we saw it".
SLACK = 4

ADMIN = "admin@example.com"      # the first admin, created by the administrator (docs §3)
DANA = "dana@example.com"        # a new employee in the IdP's group Developers
VICTOR = "victor@example.com"    # a new employee in the IdP's group Viewers
IDP_USERS = [
    {"sub": "admin", "email": ADMIN, "name": "Ada Admin", "groups": ["Admins"]},
    {"sub": "dana", "email": DANA, "name": "Dana", "groups": ["Developers"]},
    {"sub": "victor", "email": VICTOR, "name": "Victor", "groups": ["Viewers"]},
    {"sub": "noemail", "name": "No E-mail", "groups": ["Viewers"]},
]
REPO = "e2e-repo"
REDIRECT = "http://127.0.0.1:8085/callback"

ALL_ACCESS = [{"effect": "allow", "action": ["fs:*", "auth:*", "ci:*", "retention:*", "branches:*", "pr:*"],
               "resource": "*"}]
FS_FULL = [{"effect": "allow", "action": ["fs:*"], "resource": "*"}]
FS_READ = [{"effect": "allow", "action": ["fs:List*", "fs:Read*"], "resource": "*"}]


class Oss:
    def __init__(self, lakests: Server, config, idp: str, tmp):
        self.lakests, self.config, self.idp, self.tmp = lakests, config, idp, tmp
        self.authenticator = lakests.base
        self.lakefs: LakeFS | None = None  # started once lakests is set up
        self.tokens = {}

    def cli(self, *args, check=True) -> subprocess.CompletedProcess:
        proc = subprocess.run([lakests_bin(), *args, "--config", str(self.config)], capture_output=True,
                              text=True, env=clean_env(), timeout=60, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"lakests {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def home(self, name: str):
        home = self.tmp / "homes" / name
        home.mkdir(parents=True, exist_ok=True)
        return home

    def login(self, sub: str, output: str = "json", extra=(), check=True) -> subprocess.CompletedProcess:
        """The real `lakests login --endpoint <lakeFS> --authenticator <lakests>` a user runs, its
        browser the redirect follower (the development IdP signs `sub` in without a page)."""
        home = self.home(sub)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LAKESTS_", "LAKECTL_", "LAKEFS_")) and not k.lower().endswith("_proxy")
               and k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), LAKESTS_TEST_LOGIN_HINT=sub)
        proc = subprocess.run(
            [lakests_bin(), "login", "--endpoint", self.lakefs.base, "--authenticator", self.authenticator,
             "--port", str(free_port()), "--output", output, "--timeout", "60s",
             "--browser-command", f"node {shlex.quote(str(FOLLOW))}", *extra],
            capture_output=True, text=True, env=env, timeout=90, stdin=subprocess.DEVNULL)
        if check:
            assert proc.returncode == 0, f"lakests login ({sub}) failed: {proc.stderr}"
        return proc

    def lakectl(self, sub: str, *args, check=True):
        return self.lakefs.lakectl(*args, home=self.home(sub), check=check)

    def user(self, username: str):
        proc = self.cli("users", "show", username, "-o", "json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None


@pytest.fixture(scope="module")
def oss(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oss")
    authn_port, idp_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{idp_port}"
    redirect = REDIRECT
    # docs/lakefs-oss.md §1, with the development IdP as the OpenID Provider. The authenticator's
    # listen address comes first: conftest's helpers read the first one.
    doc = {
        "authenticator": {
            "listen_address": f"127.0.0.1:{authn_port}",
            "providers": [{"name": "corp", "issuer": issuer, "client_id": CLIENT_ID,
                           "redirect_uris": [redirect], "allow_loopback_any_port": True, "pkce": "state",
                           "provision_users": True, "username_claim": "email", "groups_claim": "groups"}],
        },
        "authorization": {"enabled": True},
        "data_dir": str(tmp / "data"),
        "auth": {"encrypt": {"secret_key": SECRET}, "sts": {"enabled": False}},
        "idp": {"enabled": True, "listen_address": f"127.0.0.1:{idp_port}", "issuer": issuer,
                "interactive": False, "users": IDP_USERS,
                "clients": [{"client_id": CLIENT_ID, "redirect_uris": [redirect]}]},
    }
    config = tmp / "lakests.yaml"
    config.write_text(yaml_text(doc) + "\n")
    log = tmp / "lakests.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([lakests_bin(), "serve", "--config", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, env=clean_env())
    lakests = Server(proc, f"http://127.0.0.1:{authn_port}", config, log)
    lakefs_server = None
    try:
        wait_healthy(f"{lakests.base}/api/v1/healthcheck", proc, log)
        system = Oss(lakests, config, issuer, tmp)
        # The first admin, as docs/lakefs-oss.md §3 says, and the company's groups.
        system.cli("policies", "add", "AllAccess", "--statement", json.dumps(ALL_ACCESS))
        system.cli("policies", "add", "FSFullAccess", "--statement", json.dumps(FS_FULL))
        system.cli("policies", "add", "FSReadAll", "--statement", json.dumps(FS_READ))
        for group, policy in (("Admins", "AllAccess"), ("Developers", "FSFullAccess"), ("Viewers", "FSReadAll")):
            system.cli("groups", "add", group)
            system.cli("groups", "attach-policy", group, policy)
        system.cli("users", "add", ADMIN, "--external-id", "corp:admin", "--group", "Admins")
        # lakeFS's side: what `lakests lakefs-config` prints, pasted into lakeFS's configuration.
        printed = system.cli("lakefs-config", "--show-secret").stdout
        lakefs_conf = yaml.safe_load(printed)
        assert lakefs_conf["auth"]["api"]["endpoint"] == f"{lakests.base}/api/v1", printed
        assert lakefs_conf["auth"]["ui_config"]["rbac"] == "external", printed
        lakefs_conf["auth"]["cache"] = {"enabled": True, "ttl": f"{CACHE_TTL}s", "jitter": f"{CACHE_JITTER}s"}
        lakefs_server = LakeFS(tmp / "lakefs", SECRET, config=lakefs_conf).start()
        system.lakefs = lakefs_server
        yield system
    finally:
        if lakefs_server is not None:
            lakefs_server.stop()
        stop_server(lakests)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def wait_until(predicate, limit: float, step: float = 0.25) -> float:
    """Polls until `predicate()` holds; returns the seconds it took, or fails after `limit`."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > limit:
            raise AssertionError(f"not within {limit} s")
        time.sleep(step)


# 1. A new employee logs in through lakeFS's own /api/v1/sts/login ------------------------------

def test_lakefs_starts_against_lakests_as_its_authorization_api(oss):
    """lakeFS checked lakests at boot (GET /healthcheck, then /config/version with its service
    token: a wrong secret would have stopped it) and serves. With rbac external its setup creates
    nothing (AUTHZ §7): 200 with empty credentials, and no user appears in lakests."""
    resp = requests.post(f"{oss.lakefs.api}/setup_lakefs", json={"username": "someone"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["access_key_id"] == "" and resp.json()["secret_access_key"] == ""
    assert oss.user("someone") is None
    # Without credentials lakeFS refuses data calls.
    assert requests.get(f"{oss.lakefs.api}/repositories", timeout=10).status_code == 401


def test_a_new_employee_is_provisioned_at_first_login_with_groups_from_claims(oss):
    assert oss.user(DANA) is None, "dana must not exist before her first login"
    out = json.loads(oss.login("dana").stdout)
    assert out["username"] == DANA
    assert out["endpoint"].rstrip("/") == oss.lakefs.base
    oss.tokens["dana"] = out["token"]
    user = oss.user(DANA)
    assert user is not None, "not provisioned"
    assert user["groups"] == ["Developers"], user
    assert user["external_id"] == "corp:dana", user
    # lakeFS minted the token and knows the user (through lakests's authorization API).
    me = requests.get(f"{oss.lakefs.api}/user", headers=bearer(out["token"]), timeout=10)
    assert me.status_code == 200, me.text
    assert me.json()["user"]["id"] == DANA
    # lakests login wrote lakectl's token cache with lakeFS's token.
    cache = json.loads((oss.home("dana") / ".lakectl" / "cache" / "lakectl_token_cache.json").read_text())
    assert cache["token"] == out["token"]
    # lakeFS's own API shows the membership it reads from lakests.
    admin = json.loads(oss.login("admin").stdout)
    oss.tokens["admin"] = admin["token"]
    groups = requests.get(f"{oss.lakefs.api}/auth/users/{DANA}/groups", headers=bearer(admin["token"]), timeout=10)
    assert groups.status_code == 200, groups.text
    assert [g["name"] for g in groups.json()["results"]] == ["Developers"]


# 2. The real lakectl and the lakefs SDK --------------------------------------------------------

def test_real_lakectl_with_the_token_cache_lakests_wrote(oss, tmp_path):
    assert not (oss.home("dana") / ".lakectl.yaml").exists()
    oss.lakectl("dana", "repo", "create", f"lakefs://{REPO}", f"local://{REPO}")
    data = tmp_path / "hello.txt"
    data.write_bytes(b"hello from dana through lakectl\n")
    oss.lakectl("dana", "fs", "upload", "--source", str(data), f"lakefs://{REPO}/main/dana/hello.txt")
    listing = oss.lakectl("dana", "fs", "ls", f"lakefs://{REPO}/main/dana/")
    assert "hello.txt" in listing.stdout, listing.stdout
    assert oss.lakectl("dana", "fs", "cat", f"lakefs://{REPO}/main/dana/hello.txt").stdout == data.read_text()


def test_lakefs_sdk_from_the_exported_env(oss, monkeypatch):
    exports = {}
    for line in oss.login("dana", output="env").stdout.splitlines():
        name, value = line.removeprefix("export ").split("=", 1)
        exports[name] = shlex.split(value)[0]
    assert exports["LAKECTL_SERVER_ENDPOINT_URL"].rstrip("/") == oss.lakefs.base
    for name, value in exports.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LAKECTL_CONFIG_FILE", str(oss.tmp / "no-lakectl.yaml"))
    monkeypatch.setenv("HOME", str(oss.home("dana")))
    client = lakefs.Client()
    assert client.sdk_client.auth_api.get_current_user().user.id == DANA
    repo = lakefs.repository("e2e-sdk-repo", client=client).create(storage_namespace="local://e2e-sdk-repo")
    main = repo.branch("main")
    main.object("data/one.csv").upload(data=b"a,b\n1,2\n")
    assert [o.path for o in main.objects(prefix="data/")] == ["data/one.csv"]
    assert main.object("data/one.csv").reader(mode="rb").read() == b"a,b\n1,2\n"


# 3. lakeFS enforces the policies lakests serves -----------------------------------------------

def test_a_viewer_is_refused_a_write_and_an_admin_is_allowed(oss, tmp_path):
    out = json.loads(oss.login("victor").stdout)
    assert out["username"] == VICTOR
    assert oss.user(VICTOR)["groups"] == ["Viewers"]
    data = tmp_path / "v.txt"
    data.write_bytes(b"victor was here\n")
    # Reading is allowed by FSReadAll ...
    assert "hello.txt" in oss.lakectl("victor", "fs", "ls", f"lakefs://{REPO}/main/dana/").stdout
    # ... writing is not: lakeFS evaluates the policies it read from lakests and refuses.
    refused = oss.lakectl("victor", "fs", "upload", "--source", str(data), f"lakefs://{REPO}/main/victor/v.txt",
                          check=False)
    assert refused.returncode != 0, refused.stdout
    assert "insufficient permissions" in refused.stderr.lower(), refused.stderr
    put = requests.post(f"{oss.lakefs.api}/repositories/{REPO}/branches/main/objects", params={"path": "victor/v.txt"},
                        files={"content": data.read_bytes()}, headers=bearer(out["token"]), timeout=10)
    # lakeFS answers a denied action with 401 (not 403), naming the action.
    assert put.status_code == 401, put.text
    assert put.json() == {"message": "insufficient permissions: not allowed to fs:WriteObject"}, put.text
    # The admin (group Admins, policy AllAccess) writes the same object.
    oss.lakectl("admin", "fs", "upload", "--source", str(data), f"lakefs://{REPO}/main/victor/v.txt")
    assert oss.lakectl("dana", "fs", "cat", f"lakefs://{REPO}/main/victor/v.txt").stdout == data.read_text()


# 4. The S3 gateway with credentials lakests issued ---------------------------------------------

def s3_client(oss, key_id, secret):
    return boto3.client("s3", endpoint_url=oss.lakefs.base, aws_access_key_id=key_id,
                        aws_secret_access_key=secret, region_name="us-east-1",
                        config=botocore.client.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                                      connect_timeout=5, read_timeout=30))


def test_s3_gateway_with_a_key_lakests_issued_and_its_deletion(oss):
    created = json.loads(oss.cli("credentials", "create", DANA, "-o", "json").stdout)
    key_id, secret = created["access_key_id"], created["secret_access_key"]
    s3 = s3_client(oss, key_id, secret)
    s3.put_object(Bucket=REPO, Key="main/s3/object.bin", Body=b"through the S3 gateway")
    assert s3.get_object(Bucket=REPO, Key="main/s3/object.bin")["Body"].read() == b"through the S3 gateway"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=REPO, Prefix="main/s3/")["Contents"]]
    assert keys == ["main/s3/object.bin"]
    # A wrong secret is refused (lakeFS checks the signature with the secret lakests returned).
    with pytest.raises(botocore.exceptions.ClientError):
        s3_client(oss, key_id, secret[:-1] + ("A" if secret[-1] != "A" else "B")).get_object(
            Bucket=REPO, Key="main/s3/object.bin")

    def refused():
        try:
            s3.get_object(Bucket=REPO, Key="main/s3/object.bin")
            return False
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] in ("AccessDenied", "InvalidAccessKeyId"), e.response
            return True

    oss.cli("credentials", "remove", DANA, key_id)
    took = wait_until(refused, CACHE_TTL + CACHE_JITTER + SLACK)
    print(f"deleted key refused by lakeFS's S3 gateway after {took:.1f} s")


# 5. A removed user -------------------------------------------------------------------------------

def test_a_removed_users_token_stops_working_within_lakefs_cache_ttl(oss):
    forced = oss.login("victor", extra=("--force",))
    token = json.loads(forced.stdout)["token"]
    # A second login to the same lakeFS replaces lakests's own older token in lakectl's cache
    # without calling it foreign (regression: it used to say "a token that lakests did not write").
    assert "did not write" not in forced.stderr, forced.stderr
    cache = json.loads((oss.home("victor") / ".lakectl" / "cache" / "lakectl_token_cache.json").read_text())
    assert cache["token"] == token
    assert requests.get(f"{oss.lakefs.api}/user", headers=bearer(token), timeout=10).status_code == 200
    oss.cli("users", "remove", VICTOR)
    assert oss.user(VICTOR) is None
    took = wait_until(lambda: requests.get(f"{oss.lakefs.api}/user", headers=bearer(token),
                                           timeout=10).status_code == 401,
                      CACHE_TTL + CACHE_JITTER + SLACK)
    print(f"removed user's token refused by lakeFS after {took:.1f} s")
    assert oss.lakectl("victor", "fs", "ls", f"lakefs://{REPO}/main/", check=False).returncode != 0


def test_a_removed_user_can_no_longer_log_in_until_readmitted(oss):
    """Issue 15: a user removed in lakests can no longer log in, although the identity provider
    still signs them in and `provision_users` is on: the removal is remembered (`lakests users
    removed`) and lakests's authenticator refuses the identity, so lakeFS's own
    /api/v1/sts/login answers 401. `lakests users readmit` lets the next login create the user
    again, with the groups of the claims and nothing else (no access keys, no direct
    policies)."""
    assert oss.user(VICTOR) is None, "the previous test removed victor"
    removed = json.loads(oss.cli("users", "removed", "-o", "json").stdout)
    victor = [r for r in removed if r["username"] == VICTOR]
    assert len(victor) == 1, removed
    external_id = victor[0]["external_id"]

    again = oss.login("victor", extra=("--force",), check=False)
    assert again.returncode != 0, again.stdout
    assert "refused the login" in again.stderr, again.stderr
    assert oss.user(VICTOR) is None, "not provisioned again"
    code, state = devidp_code(oss, "victor")
    resp = requests.post(f"{oss.lakefs.api}/sts/login", json={"code": code, "state": state, "redirect_uri": REDIRECT},
                         timeout=30)
    assert resp.status_code == 401, resp.text
    assert oss.user(VICTOR) is None

    oss.cli("users", "readmit", external_id)
    again = oss.login("victor", extra=("--force",), check=False)
    assert again.returncode == 0, again.stderr
    user = oss.user(VICTOR)
    assert user is not None and user["groups"] == ["Viewers"], user
    assert json.loads(oss.cli("credentials", "list", VICTOR, "-o", "json").stdout) == []


# What else the real lakeFS showed about the authorization API (AUTHZ.md) and its STS (WIRE.md) --

def jwt_claims(token: str) -> dict:
    return jwt.decode(token, SECRET, algorithms=["HS256"], audience="login")


def devidp_code(oss, sub: str) -> tuple[str, str]:
    """A code for `sub` from the development IdP in lakeFS's documented flow (state = PKCE
    verifier), for calling lakeFS's /api/v1/sts/login directly. Returns (code, state)."""
    verifier, challenge = pkce_pair()
    resp = requests.get(f"{oss.idp}/authorize", allow_redirects=False, timeout=10, params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
        "scope": "openid profile email", "state": verifier, "code_challenge": challenge,
        "code_challenge_method": "S256", "login_hint": sub})
    assert resp.status_code in (302, 303), resp.text
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(resp.headers["Location"]).query))
    return query["code"], verifier


def test_lakefs_mints_with_its_default_ttl_and_clamps_a_long_one(oss):
    """WIRE §1, §2.5 against lakeFS itself (it mints once it has found the user through lakests):
    no ttl_seconds → 3600 s; more than 12 h → 43200 s; the token's sub is the username; a
    negative ttl_seconds mints an expired token."""
    for ttl, expected in ((None, 3600), (10 ** 6, 43200), (120, 120)):
        code, state = devidp_code(oss, "dana")
        body = {"code": code, "state": state, "redirect_uri": REDIRECT}
        if ttl is not None:
            body["ttl_seconds"] = ttl
        resp = requests.post(f"{oss.lakefs.api}/sts/login", json=body, timeout=30)
        assert resp.status_code == 200, resp.text
        claims = jwt_claims(resp.json()["token"])
        assert claims["exp"] - claims["iat"] == expected, (ttl, claims)
        assert claims["sub"] == DANA and claims["iss"] == "auth"
    # ttl_seconds <= 0: lakeFS mints a token that is already expired (lakests's STS role answers
    # 400 instead, docs/compatibility.md), and refuses it.
    code, state = devidp_code(oss, "dana")
    resp = requests.post(f"{oss.lakefs.api}/sts/login", timeout=30,
                         json={"code": code, "state": state, "redirect_uri": REDIRECT, "ttl_seconds": -60})
    assert resp.status_code == 200, resp.text
    token = resp.json()["token"]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="login", options={"verify_exp": False})
    assert claims["exp"] <= claims["iat"], claims
    assert requests.get(f"{oss.lakefs.api}/user", headers=bearer(token), timeout=10).status_code == 401


def test_lakefs_refuses_an_identity_lakests_cannot_provision(oss):
    """A user whose IdP identity is valid but whose ID token has no e-mail (the username claim):
    lakests's authenticator refuses (401, reason cannot_provision) and lakeFS passes the 401 on
    as `{"message"}` (WIRE §2.1), without its reason."""
    code, state = devidp_code(oss, "noemail")
    resp = requests.post(f"{oss.lakefs.api}/sts/login", json={"code": code, "state": state, "redirect_uri": REDIRECT},
                         timeout=30)
    assert resp.status_code == 401, resp.text
    assert set(resp.json()) == {"message"}


def test_the_admin_manages_groups_policies_and_keys_through_lakefs_api(oss):
    """AUTHZ §4: what lakeFS's UI does, through lakeFS's own API with the admin's token, lands
    in lakests (names with characters lakeFS percent-encodes twice, AUTHZ §1)."""
    h = bearer(oss.tokens["admin"])
    api = oss.lakefs.api
    group = "Data Eng"
    policy = "ReadE2E(repo)"
    statement = [{"effect": "allow", "action": ["fs:Read*", "fs:List*"],
                  "resource": f"arn:lakefs:fs:::repository/{REPO}*"}]
    r = requests.post(f"{api}/auth/groups", json={"id": group}, headers=h, timeout=10)
    assert r.status_code == 201, r.text
    r = requests.post(f"{api}/auth/policies", json={"id": policy, "statement": statement}, headers=h, timeout=10)
    assert r.status_code == 201, r.text
    quoted = urllib.parse.quote
    r = requests.put(f"{api}/auth/groups/{quoted(group)}/policies/{quoted(policy)}", headers=h, timeout=10)
    assert r.status_code == 201, r.text
    r = requests.put(f"{api}/auth/groups/{quoted(group)}/members/{quoted(DANA)}", headers=h, timeout=10)
    assert r.status_code == 201, r.text
    shown = json.loads(oss.cli("groups", "show", group, "-o", "json").stdout)
    assert policy in json.dumps(shown) and DANA in json.dumps(shown), shown
    listed = requests.get(f"{api}/auth/groups/{quoted(group)}/policies", headers=h, timeout=10)
    assert listed.status_code == 200 and [p["id"] for p in listed.json()["results"]] == [policy], listed.text
    assert listed.json()["results"][0]["statement"][0]["resource"] == statement[0]["resource"]
    # A malformed policy is refused by lakeFS's own validation before it reaches lakests.
    bad = requests.post(f"{api}/auth/policies", json={"id": "Bad", "statement": [{"effect": "maybe", "action": ["fs:*"],
                                                                                    "resource": "*"}]},
                        headers=h, timeout=10)
    assert bad.status_code == 400, bad.text
    # An access key created in lakeFS's UI is made by lakests and works at the S3 gateway.
    r = requests.post(f"{api}/auth/users/{quoted(DANA)}/credentials", headers=h, timeout=10)
    assert r.status_code == 201, r.text
    key = r.json()
    assert key["access_key_id"] in oss.cli("credentials", "list", DANA, "-o", "json").stdout
    s3 = s3_client(oss, key["access_key_id"], key["secret_access_key"])
    assert s3.get_object(Bucket=REPO, Key="main/s3/object.bin")["Body"].read() == b"through the S3 gateway"


def test_the_rest_of_authz_section_4_through_lakefs_api(oss):
    """AUTHZ §4 calls the earlier tests do not reach, driven through lakeFS's own API with the
    admin's token, each checked on lakests's side: CreateUser, InviteUser and DeleteUser, user policies
    (attach, list, detach), pagination past one page, DeletePolicy and DeleteGroup, and what
    lakeFS OSS does with external principals."""
    h = bearer(oss.tokens["admin"])
    api = oss.lakefs.api
    quoted = urllib.parse.quote
    seen = {}

    # CreateUser (lakeFS's "create user" in the UI), five of them for paging.
    made = [f"page{i}@example.com" for i in range(5)]
    for name in made:
        r = requests.post(f"{api}/auth/users", json={"id": name}, headers=h, timeout=10)
        assert r.status_code == 201, r.text
        assert oss.user(name) is not None, name
    # Pagination past one page: lakeFS passes amount/after on to lakests and back.
    names, after, pages = [], "", 0
    while True:
        r = requests.get(f"{api}/auth/users", params={"amount": 2, "after": after}, headers=h, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["results"]) <= 2, body
        names += [u["id"] for u in body["results"]]
        pages += 1
        if not body["pagination"]["has_more"]:
            break
        after = body["pagination"]["next_offset"]
        assert pages < 50, "bounded"
    assert pages >= 3, pages
    assert names == sorted(names) and len(names) == len(set(names)), names
    assert set(made) <= set(names), names

    # User policies: attach, list, detach (AttachPolicyToUser, ListUserPolicies, DetachPolicyFromUser).
    user = made[0]
    r = requests.put(f"{api}/auth/users/{quoted(user)}/policies/FSReadAll", headers=h, timeout=10)
    assert r.status_code == 201, r.text
    r = requests.get(f"{api}/auth/users/{quoted(user)}/policies", headers=h, timeout=10)
    assert r.status_code == 200 and [p["id"] for p in r.json()["results"]] == ["FSReadAll"], r.text
    shown = json.loads(oss.cli("users", "show", user, "-o", "json").stdout)
    assert shown["username"] == user
    r = requests.delete(f"{api}/auth/users/{quoted(user)}/policies/FSReadAll", headers=h, timeout=10)
    assert r.status_code == 204, r.text
    r = requests.get(f"{api}/auth/users/{quoted(user)}/policies", headers=h, timeout=10)
    assert r.status_code == 200 and r.json()["results"] == [], r.text

    # External principals: lakeFS OSS's own API answers 501 for them in this deployment (it
    # never reaches lakests); lakeFS calls lakests's external-principal endpoints only from its
    # AWS IAM login, which needs AWS (docs/compatibility.md).
    r = requests.post(f"{api}/auth/users/{quoted(user)}/external/principals",
                      params={"principalId": "arn:aws:iam::123:role/x"}, json={}, headers=h, timeout=10)
    seen["create_external_principal"] = r.status_code
    r = requests.get(f"{api}/auth/users/{quoted(user)}/external/principals/ls", headers=h, timeout=10)
    seen["list_external_principals"] = r.status_code
    assert seen == {"create_external_principal": 501, "list_external_principals": 501}, seen

    # InviteUser: lakeFS hands the invitation to lakests, which creates the user (and sends no
    # mail, as its log says).
    r = requests.post(f"{api}/auth/users", json={"id": "Invitee@Example.com", "invite_user": True},
                      headers=h, timeout=10)
    assert r.status_code == 201, r.text
    users = json.loads(oss.cli("users", "list", "-o", "json").stdout)
    invited = [u for u in users if u["username"].lower() == "invitee@example.com"]
    assert len(invited) == 1, users
    made.append(invited[0]["username"])

    # DeleteUser: gone from lakests; a user without an external id leaves no removal mark.
    for name in made:
        r = requests.delete(f"{api}/auth/users/{quoted(name)}", headers=h, timeout=10)
        assert r.status_code == 204, r.text
        assert oss.user(name) is None, name
    removed = json.loads(oss.cli("users", "removed", "-o", "json").stdout)
    assert not [m for m in removed if m["username"] in made], removed

    # DeletePolicy and DeleteGroup (made through lakeFS's API by the test before).
    for path in (f"/auth/policies/{quoted('ReadE2E(repo)')}", f"/auth/groups/{quoted('Data Eng')}"):
        r = requests.delete(f"{api}{path}", headers=h, timeout=10)
        assert r.status_code == 204, (path, r.text)
        r = requests.get(f"{api}{path}", headers=h, timeout=10)
        assert r.status_code == 404, (path, r.text)
    gone = oss.cli("groups", "show", "Data Eng", check=False)
    assert gone.returncode != 0 and "not found" in gone.stderr, gone.stderr


def test_lakefs_refuses_to_start_with_another_secret(oss, tmp_path):
    """AUTHZ §2: lakeFS checks the authorization API at boot (GET /config/version with its
    service token); a lakeFS whose secret is not lakests's exits instead of failing later."""
    conf = yaml.safe_load(oss.cli("lakefs-config").stdout)
    # Printed without --show-secret, the secret is a comment (a null key): the operator sets it.
    assert conf["auth"]["encrypt"] is None
    del conf["auth"]["encrypt"]
    other = LakeFS(tmp_path / "lakefs-wrong", "another-secret-than-lakests-has-at-least-32-bytes", config=conf)
    proc = other.spawn()
    try:
        code = proc.wait(timeout=60)
    finally:
        other.stop(check=False)
    assert code != 0, other.log_text()[-2000:]
    assert "401" in other.log_text() or "nauthorized" in other.log_text(), other.log_text()[-2000:]
