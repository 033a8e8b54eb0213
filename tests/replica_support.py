"""A real streaming replica of the test server, started on this machine (tests and benchmarks).

``streaming_replica()`` takes ``pg_basebackup -R -X stream`` of the running cluster into a
temporary folder, starts a second ``postgres`` (the binaries of the running server's major
version) on a free loopback port as a hot standby, waits until it accepts connections in
recovery, and stops it and removes the folder afterwards. The base backup needs a
``host replication`` line in the primary's ``pg_hba.conf``: it is added (tagged with this
process's id) and removed again, with a configuration reload each time.

A base backup copies the whole cluster (every database, about 67 s for 0.25 GB here):
``ReplicaUnavailable`` is raised when the cluster is larger than ``REPLICA_TEST_MAX_CLUSTER_GB``
(default 20), or when the server binaries or the server are not local, so a test can skip with
the reason. The PostgreSQL binaries refuse to run as root: when this process is root they run as
the ``postgres`` OS user (``runuser``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

STANDBY_SETTINGS = (
    # A hot standby needs at least the primary's values of these.
    "max_connections",
    "max_worker_processes",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "max_wal_senders",
)


class ReplicaUnavailable(Exception):
    """No replica can be started here; the message says why."""


@dataclass
class StreamingReplica:
    host: str
    port: int
    folder: Path
    bin_dir: Path

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, dbname: str, user: str = "postgres") -> str:
        return f"postgres://{user}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str, user: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host=self.host, port=self.port, dbname=dbname, user=user, autocommit=True
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as if it crashed)."""
        if (self.data / "postmaster.pid").exists():
            _run_as_postgres(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                check=False,
            )


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _run_as_postgres(command: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - fixed arguments
        _as_postgres(command), check=check, capture_output=True, text=True, timeout=1800
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _max_cluster_bytes() -> float:
    return float(os.environ.get("REPLICA_TEST_MAX_CLUSTER_GB") or 20) * 1024**3


@contextmanager
def _replication_allowed(primary: psycopg.Connection, host: str, user: str) -> Iterator[None]:
    hba = Path(primary.execute("SHOW hba_file").fetchone()[0])  # type: ignore[index]
    tag = f"# factory-portal replica test {os.getpid()}"
    line = f"host replication {user} {host}/32 trust {tag}\n"
    try:
        original = hba.read_text()
        hba.write_text(line + original)  # first: an earlier 'reject' line must not win
    except OSError as exc:
        raise ReplicaUnavailable(f"cannot edit {hba} to allow replication: {exc}") from exc
    primary.execute("SELECT pg_reload_conf()")
    try:
        yield
    finally:
        kept = [text for text in hba.read_text().splitlines(keepends=True) if tag not in text]
        hba.write_text("".join(kept))
        primary.execute("SELECT pg_reload_conf()")


@contextmanager
def streaming_replica(
    *, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres"
) -> Iterator[StreamingReplica]:
    """A hot standby of the server at ``host:port``, streaming from it (see the module)."""
    if host not in ("127.0.0.1", "localhost"):
        raise ReplicaUnavailable(f"the test server {host} is not on this machine")
    with psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True) as db:
        version = int(db.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        size = db.execute("SELECT sum(pg_database_size(datname)) FROM pg_database").fetchone()[0]  # type: ignore[index]
        values = {
            name: db.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in STANDBY_SETTINGS
        }
        if size > _max_cluster_bytes():
            raise ReplicaUnavailable(
                f"the cluster holds {size / 1024**3:.1f} GB, more than REPLICA_TEST_MAX_CLUSTER_GB"
                f" ({_max_cluster_bytes() / 1024**3:.0f}); a base backup copies all of it"
            )
        bin_dir = Path(f"/usr/lib/postgresql/{version // 10000}/bin")
        if not (bin_dir / "pg_basebackup").exists():
            raise ReplicaUnavailable(f"no PostgreSQL {version // 10000} binaries in {bin_dir}")
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            raise ReplicaUnavailable("running as root and runuser is missing")
        folder = Path(tempfile.mkdtemp(prefix="fp-replica-"))
        replica = StreamingReplica(
            host="127.0.0.1", port=_free_port(), folder=folder, bin_dir=bin_dir
        )
        try:
            if os.geteuid() == 0:
                owner = pwd.getpwnam("postgres")
                os.chown(folder, owner.pw_uid, owner.pw_gid)
            folder.chmod(0o700)
            with _replication_allowed(db, host, user):
                _base_backup(replica, host=host, port=port, user=user)
                _configure(replica, values)
                _start(replica)
                yield replica
        finally:
            replica.stop("immediate")
            shutil.rmtree(folder, ignore_errors=True)


def _base_backup(replica: StreamingReplica, *, host: str, port: int, user: str) -> None:
    done = _run_as_postgres(
        [
            str(replica.bin_dir / "pg_basebackup"),
            *("-h", host, "-p", str(port), "-U", user),
            *("-D", str(replica.data), "-R", "-X", "stream"),
            *("--checkpoint=fast", "--no-sync", "--no-manifest"),
        ],
        check=False,
    )
    if done.returncode:
        raise ReplicaUnavailable(f"pg_basebackup failed: {done.stderr.strip()}")


def _configure(replica: StreamingReplica, values: dict[str, str]) -> None:
    """Its own configuration: the copied cluster may keep it elsewhere (Debian: /etc)."""
    settings = {
        "port": str(replica.port),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{replica.folder}'",
        "hba_file": f"'{replica.data / 'pg_hba.conf'}'",
        "ident_file": f"'{replica.data / 'pg_ident.conf'}'",
        "hot_standby": "on",
        "shared_buffers": "'32MB'",
        "fsync": "off",
        "logging_collector": "off",
        **values,
    }
    conf = "".join(f"{name} = {value}\n" for name, value in settings.items())
    files = {
        "postgresql.conf": conf,
        "pg_hba.conf": "local all all trust\nhost all all 127.0.0.1/32 trust\n",
        "pg_ident.conf": "",
    }
    for name, text in files.items():
        path = replica.data / name
        path.write_text(text)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(path, owner.pw_uid, owner.pw_gid)
    (replica.data / "postmaster.pid").unlink(missing_ok=True)
    (replica.data / "postmaster.opts").unlink(missing_ok=True)


def _start(replica: StreamingReplica, timeout_s: float = 120) -> None:
    started = _run_as_postgres(
        [
            str(replica.bin_dir / "pg_ctl"),
            *("-D", str(replica.data), "-l", str(replica.folder / "server.log")),
            *("-w", "-t", str(int(timeout_s)), "start"),
        ],
        check=False,
    )
    if started.returncode:
        log = (replica.folder / "server.log").read_text(errors="replace")[-2000:]
        raise ReplicaUnavailable(f"the replica did not start: {started.stderr.strip()} {log}")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with replica.connect("postgres") as db:
                if db.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                    return
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            raise ReplicaUnavailable("the replica did not accept connections in recovery")
        time.sleep(0.2)


def wait_replayed(
    replica: StreamingReplica, primary: psycopg.Connection, timeout_s: float = 30
) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + timeout_s
    with replica.connect("postgres") as db:
        while True:
            row = db.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [str(target)]
            ).fetchone()
            if row and row[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica did not replay {target} in {timeout_s} s")
            time.sleep(0.05)
