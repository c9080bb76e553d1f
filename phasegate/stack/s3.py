"""A local S3 (npm's s3rver) so the Tansu broker can keep its log across restarts.

Tansu stores topics in memory (``memory://``) or in S3 (``s3://BUCKET/``); with
``broker_storage = "s3://tansu/"`` the stack starts s3rver at ``s3_endpoint`` with the
bucket created, its files under ``state_dir/stack/s3``, and hands Tansu the endpoint.
s3rver is installed once with npm into ``~/.cache/phasegate/`` (Node.js and npm needed)
and run through ``s3rver_cas.js``, which adds S3's conditional writes: Tansu updates a
partition's end offset by compare-and-swap, and without them a restarted broker writes
over its log and racing producers lose acknowledged records.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from phasegate.stack.errors import MissingDependency, ServiceUnavailable
from phasegate.stack.process import ManagedProcess
from schemas.settings import Settings

S3RVER = "s3rver@3.7.1"
INSTALL_HINT = "a durable broker needs Node.js and npm (`apt-get install -y nodejs npm`)"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"}
CAS_SCRIPT = Path(__file__).with_name("s3rver_cas.js")


def is_durable(settings: Settings) -> bool:
    return settings.broker_storage.startswith("s3://")


def bucket(settings: Settings) -> str:
    return urlsplit(settings.broker_storage).netloc


def prefix() -> Path:
    return Path.home() / ".cache" / "phasegate" / S3RVER.replace("@", "-")


def s3rver_command() -> list[str]:
    """``node``, the conditional-writes launcher and the s3rver package it loads (installed
    with npm on first use).

    Launched through ``node`` explicitly, so the process's command line is exactly what
    was started (the stack checks it before it stops anything).
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise MissingDependency(INSTALL_HINT)
    # s3rver's list continuation tokens use DES, in OpenSSL 3's legacy provider only
    return [node, "--openssl-legacy-provider", str(CAS_SCRIPT), str(_package(npm).resolve())]


def _package(npm: str) -> Path:
    """s3rver's folder, installed under a lock: parallel test processes install it once."""
    path = prefix() / "node_modules" / "s3rver"
    prefix().mkdir(parents=True, exist_ok=True)
    with (prefix() / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / "package.json").exists():
            _install(npm, path)
    return path


def _install(npm: str, path: Path) -> None:
    result = subprocess.run(
        [npm, "install", "--prefix", str(prefix()), S3RVER, "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 or not (path / "package.json").exists():
        raise MissingDependency(f"npm install {S3RVER} failed: {result.stderr.strip()[-500:]}")


def endpoint(settings: Settings) -> tuple[str, int]:
    parts = urlsplit(settings.s3_endpoint)
    return parts.hostname or "127.0.0.1", parts.port or 80


def broker_env(settings: Settings) -> dict[str, str]:
    """What Tansu needs to reach the local S3."""
    return {
        "AWS_ENDPOINT": settings.s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        **CREDENTIALS,
    }


def probe(url: str) -> None:
    """Any HTTP answer means s3rver is up (it answers 403 to an unsigned request)."""
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return
    except OSError as exc:
        raise ServiceUnavailable(f"no S3 answers at {url}: {exc}") from None


def s3_process(settings: Settings) -> ManagedProcess:
    """s3rver at ``s3_endpoint`` with the broker's bucket, data under the state folder."""
    host, port = endpoint(settings)
    folder = settings.state_dir / "stack" / "s3"
    try:
        command = s3rver_command()
    except MissingDependency:
        command = ["s3rver"]  # start() reports it through prepare
    return ManagedProcess(
        name="s3",
        argv=[
            *command,
            "--directory",
            str(folder / "data"),
            "--address",
            host,
            "--port",
            str(port),
            "--configure-bucket",
            bucket(settings),
            "--allow-mismatched-signatures",
        ],
        folder=folder,
        host=host,
        ports=[port],
        probe=lambda: probe(settings.s3_endpoint),
        prepare=lambda: (folder / "data").mkdir(parents=True, exist_ok=True) or s3rver_command(),
    )
