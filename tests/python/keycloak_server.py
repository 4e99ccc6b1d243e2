"""A real Keycloak (org.keycloak:keycloak-quarkus-dist from Maven Central, fetched by
scripts/keycloak-fetch.sh into a cache outside the checkout) for the Python suites.

Dev mode, an H2 file database in the test's temporary directory, loopback only. The database
starts as a copy of the template scripts/keycloak-fetch.sh prepared (Keycloak already
bootstrapped in it), which saves most of a start; without the template Keycloak bootstraps an
empty one, slower. The realm is ours (tests/keycloak/realm.json), imported
through Keycloak's admin REST API (`POST /admin/realms`, the same representation as a realm
export). A missing Keycloak or Java makes the tests FAIL with the command to run.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import ROOT, free_port

REALM_FILE = ROOT / "tests" / "keycloak" / "realm.json"
DEFAULT_VERSION = "26.7.3"
# The bootstrap admin; scripts/keycloak-fetch.sh bootstraps the template with the same.
ADMIN_USER = "lakests-test-admin"
ADMIN_PASSWORD = "lakests-test-admin-password"
START_TIMEOUT = float(os.environ.get("LAKESTS_TEST_KEYCLOAK_START_TIMEOUT", "240"))


def keycloak_home() -> Path:
    explicit = os.environ.get("LAKESTS_TEST_KEYCLOAK_HOME")
    if explicit:
        home = Path(explicit)
    else:
        cache = os.environ.get("LAKESTS_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lakests")
        home = Path(cache) / f"keycloak-{os.environ.get('LAKESTS_KEYCLOAK_VERSION', DEFAULT_VERSION)}"
    if not os.access(home / "bin" / "kc.sh", os.X_OK):
        pytest.fail(f"Keycloak is not installed at {home}: run scripts/keycloak-fetch.sh "
                    "(or set LAKESTS_TEST_KEYCLOAK_HOME)")
    return home


def java_home() -> str:
    """Keycloak 26 needs Java 21 or later: LAKESTS_TEST_JAVA_HOME, else a JAVA_HOME that is new
    enough, else the first JDK >= 21 under /usr/lib/jvm."""
    candidates = [os.environ.get("LAKESTS_TEST_JAVA_HOME"), os.environ.get("JAVA_HOME")]
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += [str(p) for p in sorted(jvm.iterdir(), reverse=True)]
    for cand in candidates:
        if not cand or not os.access(Path(cand) / "bin" / "java", os.X_OK):
            continue
        release = Path(cand) / "release"
        m = re.search(r'JAVA_VERSION="(\d+)', release.read_text()) if release.exists() else None
        if m and int(m.group(1)) >= 21:
            return cand
    pytest.fail("Keycloak needs Java 21 or later and none was found (set LAKESTS_TEST_JAVA_HOME)")


class Keycloak:
    def __init__(self, workdir: Path):
        self.home = keycloak_home()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base}/realms/lakests"
        self.log = workdir / "keycloak.log"
        self.db_dir = workdir / "h2"
        self.proc = None
        self.start_seconds = None
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")
               and not k.startswith("KC_")}
        env.update(JAVA_HOME=java_home(), KC_BOOTSTRAP_ADMIN_USERNAME=ADMIN_USER,
                   KC_BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD,
                   # Start-up is CPU-bound on a busy 2-core machine: the C1 compiler only and a
                   # class-data-sharing archive kept beside the cached Keycloak (written by the
                   # first start) cut it by about 40 % here; the bootstrapped template database by half
                   # again (docs/providers.md has the figures).
                   JAVA_OPTS_APPEND="-XX:TieredStopAtLevel=1 -XX:+AutoCreateSharedArchive "
                                    f"-XX:SharedArchiveFile={self.home / 'lakests-cds.jsa'}")
        self.env = env

    def start(self) -> "Keycloak":
        started = time.monotonic()
        self.db_dir.mkdir(parents=True, exist_ok=True)
        template = self.home / "lakests-h2-template" / "keycloakdb.mv.db"
        if template.exists():
            shutil.copyfile(template, self.db_dir / "keycloakdb.mv.db")
        with open(self.log, "w") as out:
            # The same build options on every start (db=dev-file, as scripts/keycloak-fetch.sh
            # prepared), so Keycloak does not rebuild its image; the database URL is a runtime
            # option.
            self.proc = subprocess.Popen(
                [str(self.home / "bin" / "kc.sh"), "start-dev", "--db=dev-file",
                 f"--db-url=jdbc:h2:file:{self.db_dir / 'keycloakdb'};NON_KEYWORDS=VALUE", "--http-host=127.0.0.1",
                 f"--http-port={self.port}", f"--http-management-port={free_port()}"],
                stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        deadline = started + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"Keycloak exited early ({self.proc.returncode}):\n{self.log.read_text()[-4000:]}")
            try:
                if requests.get(f"{self.base}/realms/master", timeout=2).status_code == 200:
                    self.start_seconds = time.monotonic() - started
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        else:
            self.stop()
            pytest.fail(f"Keycloak did not start within {START_TIMEOUT} s:\n{self.log.read_text()[-4000:]}")
        self.import_realm()
        return self

    def admin_token(self) -> str:
        resp = requests.post(f"{self.base}/realms/master/protocol/openid-connect/token", timeout=30, data={
            "grant_type": "password", "client_id": "admin-cli", "username": ADMIN_USER, "password": ADMIN_PASSWORD})
        assert resp.status_code == 200, f"Keycloak admin login: {resp.status_code} {resp.text[:300]}"
        return resp.json()["access_token"]

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.admin_token()}"}
        return requests.request(method, f"{self.base}/admin/realms{path}", headers=headers, timeout=30, **kwargs)

    def import_realm(self):
        resp = self.admin("POST", "", json=json.loads(REALM_FILE.read_text()))
        assert resp.status_code == 201, f"realm import: {resp.status_code} {resp.text[:500]}"

    def jwks_kids(self) -> set[str]:
        resp = requests.get(f"{self.issuer}/protocol/openid-connect/certs", timeout=10)
        assert resp.status_code == 200
        return {k["kid"] for k in resp.json()["keys"] if k.get("use") == "sig"}

    def rotate_signing_key(self) -> tuple[set[str], set[str]]:
        """A key rotation as an operator does it: a new RSA signing key with a higher priority,
        then the old RSA keys removed (so they vanish from the JWKS). Returns (old, new) kids."""
        realm = self.admin("GET", "/lakests").json()
        before = self.jwks_kids()
        comps = self.admin("GET", "/lakests/components", params={"type": "org.keycloak.keys.KeyProvider"}).json()
        old_rsa = [c for c in comps if c["providerId"] == "rsa-generated"]
        assert old_rsa, comps
        resp = self.admin("POST", "/lakests/components", json={
            "name": "rsa-rotated", "providerId": "rsa-generated", "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm["id"], "config": {"priority": ["500"], "enabled": ["true"], "active": ["true"],
                                                "algorithm": ["RS256"], "keySize": ["2048"]}})
        assert resp.status_code == 201, f"new key: {resp.status_code} {resp.text[:300]}"
        for comp in old_rsa:
            resp = self.admin("DELETE", f"/lakests/components/{comp['id']}")
            assert resp.status_code == 204, f"delete key: {resp.status_code} {resp.text[:300]}"
        after = self.jwks_kids()
        return before, after

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
