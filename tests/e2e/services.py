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
            "-c",
            "python:fedsx.server.gunicorn",  # the metrics directory's hooks, as README says
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


def manage(
    env: dict, *args: str, timeout: float = 60, input_text: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=input_text,
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


class Beat(Process):
    """celery beat with the node's schedule (the sweeps), its state file in the log dir."""

    def __init__(self, env: dict, log_dir: Path, app: str = "fedsx.server.celery"):
        argv = [
            str(BIN / "celery"),
            "-A",
            app,
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(log_dir / f"beat-{free_port()}"),
        ]
        super().__init__("celery-beat", argv, env, log_dir)

    def start(self) -> None:
        super().start()
        wait_until(lambda: "beat: Starting" in self.output() or not self.running, 30, "celery beat")
        if not self.running:
            raise AssertionError(f"celery beat exited:\n{self.output()}")


class Database:
    """A Postgres database of one node's own, made from a migrated template."""

    def __init__(self, admin_url: str, name: str):
        self.admin_url, self.name = admin_url, name
        base = admin_url.rsplit("/", 1)[0]
        self.url = f"{base}/{name}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def create(self, template: str | None = None) -> None:
        self.drop()
        suffix = f" TEMPLATE {template}" if template else ""
        self._admin(f"CREATE DATABASE {self.name}{suffix}")

    def drop(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def rows(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def value(self, sql: str, *params):
        rows = self.rows(sql, *params)
        return rows[0][0] if rows else None


class FederatedNode:
    """One whole fedsx node: its own database, gunicorn and Celery worker, and a demo actor,
    on a port of its own; the allowlist lets it reach the other nodes on loopback."""

    def __init__(self, name: str, db: Database, env: dict, log_dir: Path, port: int):
        self.name, self.db, self.port = name, db, port
        self.log_dir = log_dir / name
        self.log_dir.mkdir(exist_ok=True)
        self.env = {
            **env,
            "DATABASE_URL": db.url,
            "FEDSX_BASE_URL": f"http://127.0.0.1:{port}",
            "FEDSX_DATA_DIR": str(self.log_dir),
        }
        self.server = Node(self.env, self.log_dir, port)
        self.worker = Worker(self.env, self.log_dir, app="fedsx.server.celery")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def demo(self) -> str:
        return f"{self.base_url}/actors/demo"

    def manage(
        self, *args: str, timeout: float = 60, input_text: str | None = None
    ) -> subprocess.CompletedProcess:
        result = manage(self.env, *args, timeout=timeout, input_text=input_text)
        assert result.returncode == 0, f"{self.name}: manage.py {args}: {result.stderr}"
        return result

    def start(self) -> None:
        self.manage("create_actor", "demo")
        self.manage("flows", "register")
        self.server.start()
        self.worker.start()

    def stop(self) -> None:
        for process in (self.worker, self.server):
            process.stop()

    def inbox(self) -> list[tuple[int, str, str]]:
        """(seq, type, activity id) of the demo actor's inbox, in order."""
        return self.db.rows(
            "SELECT e.seq, a.type, a.ap_id FROM fedsx_inboxentry e"
            " JOIN fedsx_activity a ON a.id = e.activity_id"
            " JOIN fedsx_actor r ON r.id = e.actor_id"
            " WHERE r.ap_id = %s ORDER BY e.seq",
            self.demo,
        )
