"""A real PostgreSQL server for the study-storage check of test_two_models (``--study-storage
URL``): Debian's ``initdb``/``pg_ctl``, run as the ``postgres`` user when the tests run as root."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile

import pytest


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Unavailable(Exception):
    """No PostgreSQL server can be started here (the message says why)."""


def _skip(reason: str) -> None:
    """Fail where CI asks for a real server (``EMOHRNET_REQUIRE_POSTGRES=1``), else raise
    :class:`Unavailable`."""
    if os.environ.get("EMOHRNET_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (EMOHRNET_REQUIRE_POSTGRES=1: CI runs this test against a real server)")
    raise Unavailable(reason)


@contextlib.contextmanager
def postgres_server():
    """A real PostgreSQL server on a free 127.0.0.1 port, in a temporary data folder, stopped and removed
    at the end; yields its SQLAlchemy URL.

    Raises:
        Unavailable: no server binaries, or it could not start (CI fails instead).
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        _skip("PostgreSQL server binaries (initdb, pg_ctl) not found; .ci/run installs Debian's postgresql")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        _skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    base = tempfile.mkdtemp(prefix="emohrnet-pg-", dir="/tmp")
    os.chmod(base, 0o777)
    data = os.path.join(base, "data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        subprocess.run(_as_postgres([initdb, "-D", data, "-A", "trust", "-U", "postgres"]), check=True,
                       capture_output=True, timeout=120)
        subprocess.run(_as_postgres([pg_ctl, "-D", data, "-w", "-t", "60", "-l", os.path.join(base, "log"), "-o",
                                     f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"]),
                       check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
        shutil.rmtree(base, ignore_errors=True)
        _skip(f"PostgreSQL could not start here: {err}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", data, "-m", "fast", "stop"]), capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)
