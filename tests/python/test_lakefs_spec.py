"""lakefs-spec (the fsspec file system for lakeFS, from PyPI) authenticating with the token that
`lakests login` exports, read from the same environment variables (LAKECTL_SERVER_ENDPOINT_URL,
LAKECTL_CREDENTIALS_SESSION_TOKEN).

The token comes from the real lakests STS server. The data call goes to a stand-in for lakeFS's
object-stat route (lakeFS itself is not run here) that checks the bearer token with lakeFS's
rules (WIRE.md §4) using PyJWT and the shared secret, as a lakeFS sharing the key would."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
from lakefs_spec import LakeFSFileSystem

from conftest import SECRET

REDIRECT = "http://127.0.0.1:8085/callback"


class LakefsObjectStandIn:
    """GET /api/v1/repositories/example-repo/refs/main/objects/stat?path=data.csv, for the user
    of a bearer token valid under lakeFS's rules; 401 otherwise."""

    def __init__(self):
        self.seen_users = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 (http.server naming)
                auth = self.headers.get("Authorization", "")
                try:
                    claims = jwt.decode(auth.removeprefix("Bearer "), SECRET,
                                        algorithms=["HS256", "HS384", "HS512"],
                                        options={"require": ["exp"], "verify_aud": False})
                    if not isinstance(claims.get("aud", ""), str) or claims.get("aud", "") not in ("", "login"):
                        raise jwt.InvalidAudienceError("aud")
                except jwt.PyJWTError:
                    return self._send(401, {"message": "error authenticating request"})
                outer.seen_users.append(claims.get("sub"))
                url = urlparse(self.path)
                if (url.path == "/api/v1/repositories/example-repo/refs/main/objects/stat"
                        and parse_qs(url.query).get("path") == ["data.csv"]):
                    return self._send(200, {
                        "path": "data.csv", "path_type": "object",
                        "physical_address": "local://example-repo/data.csv",
                        "checksum": "d41d8cd98f00b204e9800998ecf8427e", "mtime": 1700000000,
                        "size_bytes": 42, "content_type": "text/csv",
                    })
                return self._send(404, {"message": "not found"})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lakefs_objects():
    s = LakefsObjectStandIn()
    yield s
    s.close()


def test_lakefs_spec_reads_the_exported_token_from_the_environment(sts_server, lakefs_objects,
                                                                    monkeypatch):
    resp = requests.post(f"{sts_server.base}/api/v1/sts/login", timeout=10,
                         json={"code": "c", "state": "s", "redirect_uri": REDIRECT})
    assert resp.status_code == 200, resp.text
    # What `eval "$(lakests login ...)"` leaves in the environment, pointed at lakeFS.
    monkeypatch.setenv("LAKECTL_SERVER_ENDPOINT_URL", lakefs_objects.url)
    monkeypatch.setenv("LAKECTL_CREDENTIALS_SESSION_TOKEN", resp.json()["token"])
    monkeypatch.setenv("LAKECTL_CONFIG_FILE", "/nonexistent/lakectl.yaml")
    # fsspec caches file systems by their arguments, not by the environment: a fresh one reads
    # the current token.
    fs = LakeFSFileSystem(skip_instance_cache=True)
    info = fs.info("example-repo/main/data.csv")
    assert info["type"] == "file"
    assert info["size"] == 42
    assert lakefs_objects.seen_users == ["alice"]


def test_lakefs_spec_with_a_token_lakefs_would_refuse_is_a_permission_error(lakefs_objects,
                                                                             monkeypatch):
    forged = jwt.encode({"sub": "alice", "aud": "login", "exp": 4_000_000_000},
                        "not-the-shared-secret-but-long-enough-for-hs256", algorithm="HS256")
    monkeypatch.setenv("LAKECTL_SERVER_ENDPOINT_URL", lakefs_objects.url)
    monkeypatch.setenv("LAKECTL_CREDENTIALS_SESSION_TOKEN", forged)
    monkeypatch.setenv("LAKECTL_CONFIG_FILE", "/nonexistent/lakectl.yaml")
    with pytest.raises(PermissionError):
        LakeFSFileSystem(skip_instance_cache=True).info("example-repo/main/data.csv")
    assert lakefs_objects.seen_users == []
