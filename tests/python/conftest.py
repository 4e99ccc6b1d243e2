"""Fixtures that run the real `lakests` binary on loopback ports with a real SQLite file."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SECRET = "python-suite-secret-key-with-32-bytes-or-more"


def lakests_bin() -> str:
    path = os.environ.get("LAKESTS_TEST_BIN", str(ROOT / "target" / "debug" / "lakests"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"lakests binary not found at {path}: run `cargo build -p lakests-cli` first "
                    "(or set LAKESTS_TEST_BIN)")
    return path


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORT_LOW = 10_000
_port_span = _ephemeral_start() - _PORT_LOW
assert _port_span > 1_000, "the ephemeral port range leaves no room below it for test servers"
_next_port = os.getpid() % _port_span
_port_lock = threading.Lock()


def free_port() -> int:
    """A free loopback port for a server started later (lakeFS, Keycloak, lakests, the IdP).

    Taken below the kernel's ephemeral range, so that neither `bind(0)` nor an outgoing
    connection (a readiness poll, a client of another server) can get it while the server is
    still starting, and never the same port twice in this process."""
    global _next_port
    with _port_lock:
        for _ in range(_port_span):
            port = _PORT_LOW + _next_port % _port_span
            _next_port += 1
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free loopback port in {_PORT_LOW}..{_PORT_LOW + _port_span}")


def clean_env(**extra) -> dict:
    """The environment for a lakests process: no stray LAKESTS_* configuration (nor lakeFS's
    LAKEFS_AUTH_ENCRYPT_SECRET_KEY, which lakests reads as an alias), no proxies."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LAKESTS_") and k != "LAKEFS_AUTH_ENCRYPT_SECRET_KEY"
           and not k.lower().endswith("_proxy")}
    env.update(extra)
    return env


def run_cli(*args, config: Path, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([lakests_bin(), *args, "--config", str(config)], capture_output=True,
                          text=True, env=clean_env(), timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"lakests {' '.join(args)} failed: {proc.stderr}")
    return proc


class StandInAuthenticator:
    """A stand-in for lakeFS's authentication API: answers POST /api/v1/sts/login with chosen
    claims, and records what it was sent."""

    def __init__(self):
        self.claims = {"sub": "alice-ext"}
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                length = int(self.headers.get("Content-Length", "0"))
                outer.requests.append(json.loads(self.rfile.read(length) or b"null"))
                body = json.dumps({"claims": outer.claims}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class Server:
    def __init__(self, proc, base, config, log):
        self.proc, self.base, self.config, self.log = proc, base, config, log


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"lakests exited early ({proc.returncode}):\n{log.read_text()}")
        try:
            if requests.get(url, timeout=1).status_code == 204:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    pytest.fail(f"lakests did not become healthy at {url}:\n{log.read_text()}")


def start_server(tmp_path: Path, config_text: str) -> Server:
    config = tmp_path / "lakests.yaml"
    config.write_text(config_text)
    log = tmp_path / "lakests.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([lakests_bin(), "serve", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=clean_env())
    port = int(config_text.split('listen_address: "127.0.0.1:')[1].split('"')[0])
    base = f"http://127.0.0.1:{port}"
    wait_healthy(f"{base}/api/v1/healthcheck", proc, log)
    return Server(proc, base, config, log)


def stop_server(server: Server):
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            code = server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            pytest.fail("lakests did not stop within 15 s of SIGTERM")
        assert code == 0, f"lakests exited with {code} after SIGTERM:\n{server.log.read_text()}"


@pytest.fixture
def standin():
    s = StandInAuthenticator()
    yield s
    s.close()


@pytest.fixture
def sts_server(tmp_path, standin):
    """The STS server role against the stand-in authenticator, user alice mapped to alice-ext."""
    port = free_port()
    text = (f'listen_address: "127.0.0.1:{port}"\n'
            f'data_dir: "{tmp_path / "data"}"\n'
            "auth:\n"
            f"  encrypt:\n    secret_key: {SECRET}\n"
            f"  authentication_api:\n    endpoint: {standin.url}\n")
    (tmp_path / "lakests.yaml").write_text(text)
    run_cli("users", "add", "alice", "--external-id", "alice-ext", "--email", "alice@example.com",
            "--friendly-name", "Alice", "--group", "admins", config=tmp_path / "lakests.yaml")
    server = start_server(tmp_path, text)
    yield server
    stop_server(server)
