"""Real processes for the end-to-end tests: a Redis broker, the node under gunicorn, a Celery
worker. Each is started on loopback by a fixture and always stopped by its finalizer."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SENDER = "https://remote.example/users/alice"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Process:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path):
        self.name, self.argv, self.env = name, argv, env
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a worker's or gunicorn's children too)."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


class RedisServer(Process):
    def __init__(self, log_dir: Path):
        self.port = free_port()
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(log_dir),
        ]
        super().__init__(f"redis-{self.port}", argv, dict(os.environ), log_dir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        super().start()
        wait_until(lambda: port_open(self.port), 10, "redis-server")


class Node(Process):
    """The fedsx node served by gunicorn, as in production."""

    def __init__(self, env: dict, log_dir: Path, port: int, workers: int = 2, threads: int = 1):
        self.port = port
        argv = [
            str(BIN / "gunicorn"),
            "fedsx.server.wsgi",
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "5",
        ]
        super().__init__(f"gunicorn-{port}", argv, env, log_dir)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()

        def up() -> bool:
            if not self.running:
                raise AssertionError(f"gunicorn exited:\n{self.output()}")
            try:
                return httpx.get(f"{self.base_url}/.well-known/nodeinfo", timeout=1).is_success
            except httpx.HTTPError:
                return False

        wait_until(up, 30, "gunicorn")


class Worker(Process):
    def __init__(
        self,
        env: dict,
        log_dir: Path,
        concurrency: int = 2,
        app: str = "tests.e2e.worker",
        pool: str = "prefork",
        loglevel: str = "INFO",
    ):
        argv = [
            str(BIN / "celery"),
            "-A",
            app,
            "worker",
            f"--loglevel={loglevel}",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        super().__init__("celery-worker", argv, env, log_dir)
        self.app = app

    def answers_ping(self) -> bool:
        ping = subprocess.run(
            [str(BIN / "celery"), "-A", self.app, "inspect", "ping", "--timeout", "1"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return ping.returncode == 0 and "pong" in ping.stdout

    def start(self) -> None:
        super().start()
        # "ready." is logged at INFO; a quieter worker is asked instead.
        wait_until(
            lambda: "ready." in self.output() or not self.running or self.answers_ping(),
            60,
            "the celery worker",
            interval=0.5,
        )
        if not self.running:
            raise AssertionError(f"celery worker exited:\n{self.output()}")


def manage(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Sender:
    """A remote actor whose key the node already knows (its Actor row is the key cache)."""

    def __init__(self, ap_id: str = SENDER):
        # Imported here: the rest of this module (processes, ports) needs no Django.
        from fedsx.crypto import generate_rsa_keypair
        from fedsx.models import Actor

        self.private_pem, public_pem = generate_rsa_keypair()
        self.ap_id = ap_id
        self.key_id = f"{ap_id}#main-key"
        Actor.objects.create(
            ap_id=ap_id,
            username=ap_id.rsplit("/", 1)[-1],
            domain=ap_id.split("/")[2],
            key_id=self.key_id,
            public_key_pem=public_pem,
            inbox_url=f"{ap_id}/inbox",
        )
        self.client = httpx.Client(timeout=10)
        self.sent = 0

    def follow(self, target: str) -> dict:
        self.sent += 1
        return {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{self.ap_id}#follows/{self.sent}-{os.urandom(4).hex()}",
            "type": "Follow",
            "actor": self.ap_id,
            "object": target,
        }

    def signed(self, inbox_url: str, activity: dict) -> tuple[str, bytes, dict]:
        """(activity id, body, headers) of a signed POST of ``activity`` to ``inbox_url``."""
        from fedsx.httpsig import sign_cavage

        body = json.dumps(activity).encode()
        headers = {"Content-Type": "application/activity+json"}
        headers.update(sign_cavage("POST", inbox_url, headers, body, self.key_id, self.private_pem))
        return activity["id"], body, headers

    def post(self, inbox_url: str, activity: dict) -> httpx.Response:
        _, body, headers = self.signed(inbox_url, activity)
        return self.client.post(inbox_url, content=body, headers=headers)
