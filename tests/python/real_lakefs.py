"""A real lakeFS server (and the real lakectl) for the Python suites.

The binaries are built from the Go module proxy by scripts/lakefs-build.sh at the release pinned
in tests/lakefs/go.mod, into a cache outside the checkout. A missing build makes every test that
needs it FAIL with the command to run; nothing is skipped.

`LakeFS` runs `lakefs run` on a loopback port with its local KV store and local blockstore in a
temporary directory, creates the admin through lakeFS's own setup API, and stops it with SIGTERM.
"""

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from conftest import ROOT, free_port, run_cli, start_server

LAKEFS_GO_MOD = ROOT / "tests" / "lakefs" / "go.mod"
ADMIN = "admin"


def lakefs_version() -> str:
    for line in LAKEFS_GO_MOD.read_text().splitlines():
        m = re.match(r"\s*(?:require\s+)?github\.com/treeverse/lakefs\s+(v\S+)", line)
        if m:
            return m.group(1)
    raise AssertionError(f"{LAKEFS_GO_MOD} does not require github.com/treeverse/lakefs")


def lakefs_bin_dir() -> Path:
    """Where scripts/lakefs-build.sh put lakefs and lakectl (LAKESTS_TEST_LAKEFS_DIR overrides)."""
    explicit = os.environ.get("LAKESTS_TEST_LAKEFS_DIR")
    if explicit:
        path = Path(explicit)
    else:
        cache = os.environ.get("LAKESTS_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lakests")
        path = Path(cache) / f"lakefs-{lakefs_version()}"
    for name in ("lakefs", "lakectl"):
        if not os.access(path / name, os.X_OK):
            pytest.fail(f"the real {name} is not built at {path / name}: run scripts/lakefs-build.sh "
                        "(or set LAKESTS_TEST_LAKEFS_DIR)")
    return path


def peer_env(home: Path, **extra) -> dict:
    """A clean environment for lakeFS and lakectl: no stray LAKEFS_*/LAKECTL_*/LAKESTS_*
    configuration, no proxies, a private HOME (lakectl's token cache and config live there)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LAKEFS_", "LAKECTL_", "LAKESTS_")) and not k.lower().endswith("_proxy")}
    env["HOME"] = str(home)
    env.update(extra)
    return env


def yaml_text(value, indent=0) -> str:
    """Block YAML for plain dicts/lists/scalars (JSON scalars are valid YAML scalars)."""
    pad = "  " * indent
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n{yaml_text(v, indent + 1)}")
            else:
                out.append(f"{pad}{k}: {json.dumps(v)}")
    else:
        for v in value:
            if isinstance(v, (dict, list)) and v:
                inner = yaml_text(v, indent + 1).lstrip()
                out.append(f"{pad}- {inner}")
            else:
                out.append(f"{pad}- {json.dumps(v)}")
    return "\n".join(out)


def deep_merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


class LakeFS:
    """One `lakefs run` process. `config` is merged over the defaults below; `env` adds
    LAKEFS_* variables (lakeFS reads every key from the environment too)."""

    def __init__(self, workdir: Path, secret: str, config: dict | None = None, env: dict | None = None,
                 secret_in_env: bool = False, port: int | None = None):
        self.bin_dir = lakefs_bin_dir()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        # A port chosen beforehand when lakests must know lakeFS's URL first (web-UI login).
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.base}/api/v1"
        self.secret = secret
        doc = {
            "listen_address": f"127.0.0.1:{self.port}",
            "logging": {"level": "INFO", "format": "text"},
            "database": {"type": "local", "local": {"path": str(workdir / "metadata"), "sync_writes": False}},
            "blockstore": {"type": "local", "local": {"path": str(workdir / "data")}},
            "auth": {"encrypt": {"secret_key": secret}},
            # No calls home from a test: usage statistics, the audit and the latest-version checks.
            "stats": {"enabled": False},
            # The audit check runs once at start and then every interval; point it at the discard
            # port (refused at once) and make the interval long.
            "security": {"check_latest_version": False, "audit_check_interval": "8760h",
                         "audit_check_url": "http://127.0.0.1:9/audit"},
            "email_subscription": {"enabled": False},
        }
        if secret_in_env:
            del doc["auth"]
        doc = deep_merge(doc, config or {})
        self.config_path = workdir / "lakefs.yaml"
        self.config_path.write_text(yaml_text(doc) + "\n")
        self.log = workdir / "lakefs.log"
        self.env = peer_env(workdir, **(env or {}))
        if secret_in_env:
            self.env["LAKEFS_AUTH_ENCRYPT_SECRET_KEY"] = secret
        self.proc = None
        self.access_key_id = None
        self.secret_access_key = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def spawn(self) -> subprocess.Popen:
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([str(self.bin_dir / "lakefs"), "run", "--config", str(self.config_path)],
                                         stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir)
        return self.proc

    def start(self, timeout: float = 60.0) -> "LakeFS":
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"lakeFS exited early ({self.proc.returncode}):\n{self.log_text()[-4000:]}")
            try:
                if requests.get(f"{self.api}/healthcheck", timeout=1).status_code == 204:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop(check=False)
        pytest.fail(f"lakeFS did not answer {self.api}/healthcheck within {timeout} s:\n{self.log_text()[-4000:]}")

    def setup_admin(self, username: str = ADMIN) -> dict:
        """lakeFS's own first-run setup (what `lakefs setup` and the web UI call): the admin
        user and its access key."""
        resp = requests.post(f"{self.api}/setup_lakefs", json={"username": username}, timeout=30)
        assert resp.status_code == 200, f"setup_lakefs: {resp.status_code} {resp.text}"
        creds = resp.json()
        self.access_key_id = creds["access_key_id"]
        self.secret_access_key = creds["secret_access_key"]
        return creds

    @property
    def basic_auth(self):
        return (self.access_key_id, self.secret_access_key)

    def stop(self, check: bool = True):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            if check:
                pytest.fail(f"lakeFS did not stop within 30 s of SIGTERM:\n{self.log_text()[-4000:]}")

    def lakectl(self, *args, home: Path, env: dict | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess:
        """The real lakectl against this server, with HOME=`home` and no access keys: it uses
        the token cache in `home`/.lakectl/cache (WIRE.md §8)."""
        extra = {"LAKECTL_SERVER_ENDPOINT_URL": self.base, **(env or {})}
        proc = subprocess.run([str(self.bin_dir / "lakectl"), *args], capture_output=True, text=True,
                              env=peer_env(home, **extra), timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"lakectl {' '.join(args)} exited {proc.returncode}:\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc


def write_lakectl_token_cache(home: Path, token: str, expiration: int) -> Path:
    """lakectl's token cache as WIRE.md §8 describes it: ~/.lakectl/cache/lakectl_token_cache.json
    (directory 0700), {"token", "expiration_time"}."""
    cache_dir = home / ".lakectl" / "cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(home / ".lakectl", 0o700)
    os.chmod(cache_dir, 0o700)
    path = cache_dir / "lakectl_token_cache.json"
    tmp = cache_dir / ".lakectl_token_cache.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"token": token, "expiration_time": expiration}, f)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------------
# lakests beside lakeFS: STS server + authenticator + development IdP in one `lakests serve`.

CLIENT_ID = "lakests"


class Lakests:
    def __init__(self, server, idp: str, authenticator: str, redirect: str, config: Path):
        self.server, self.idp, self.authenticator, self.redirect, self.config = \
            server, idp, authenticator, redirect, config

    @property
    def base(self) -> str:
        return self.server.base


def start_lakests(tmp: Path, secret: str, users=(), idp_users=(), sts_extra: str = "") -> Lakests:
    """`lakests serve` with the STS role (lakeFS's secret), the authenticator role (provider: the
    development IdP, state-mode PKCE, as lakeFS documents) and the development IdP (not
    interactive: login_hint signs in). `users` are (username, external_id, groups) added with
    `lakests users add` before the start; `idp_users` are dicts for idp.users."""
    tmp.mkdir(parents=True, exist_ok=True)
    port, auth_port, idp_port, cb_port = free_port(), free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{idp_port}"
    redirect = f"http://127.0.0.1:{cb_port}/callback"
    doc = {
        "listen_address": f"127.0.0.1:{port}",
        "data_dir": str(tmp / "data"),
        "auth": {"encrypt": {"secret_key": secret}},
        "authenticator": {
            "listen_address": f"127.0.0.1:{auth_port}",
            "providers": [{"name": "dev", "issuer": issuer, "client_id": CLIENT_ID,
                           "redirect_uris": [redirect], "pkce": "state"}],
        },
        "idp": {
            "enabled": True, "listen_address": f"127.0.0.1:{idp_port}", "issuer": issuer,
            "interactive": False, "users": list(idp_users),
            "clients": [{"client_id": CLIENT_ID, "redirect_uris": [redirect]}],
        },
    }
    text = yaml_text(doc) + "\n" + sts_extra
    # conftest.start_server reads the port from the first `listen_address: "127.0.0.1:N"`: ours.
    config = tmp / "lakests.yaml"
    config.write_text(text)
    for username, external_id, groups in users:
        args = ["users", "add", username, "--external-id", external_id]
        for g in groups:
            args += ["--group", g]
        run_cli(*args, config=config)
    server = start_server(tmp, text)
    return Lakests(server, issuer, f"http://127.0.0.1:{auth_port}/api/v1", redirect, config)


def pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def devidp_code(system: Lakests, login_hint: str) -> tuple[str, str]:
    """An authorization code from the development IdP (non-interactive: login_hint signs in),
    in lakeFS's documented flow (state = PKCE verifier). Returns (code, state)."""
    verifier, challenge = pkce_pair()
    resp = requests.get(f"{system.idp}/authorize", allow_redirects=False, timeout=10, params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": system.redirect,
        "scope": "openid profile email", "state": verifier, "code_challenge": challenge,
        "code_challenge_method": "S256", "login_hint": login_hint})
    assert resp.status_code in (302, 303), f"{resp.status_code}: {resp.text[:300]}"
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(resp.headers["Location"]).query))
    assert "code" in query, query
    return query["code"], verifier
