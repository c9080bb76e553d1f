"""The same store tests on both backends: ClickHouse 18.16 server and chdb (26.9)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from kafka import TopicPartition

from schemas import Alert, AlertAction, AlertWindow, Feedback, RolloutEvent, encode
from schemas.events import Contributor, Result
from schemas.fastcodec import fast_decode_structs
from sinks import ddl, rows
from sinks.batch import entry_columns
from sinks.ledger import Entries
from sinks.migrations import MIGRATIONS, migrate
from sinks.store import Store, StoreError, StoreUnavailable
from tests.sinks.conftest import T0, make_result


def test_version_is_a_tuple(store: Store) -> None:
    assert len(store.version) == 3
    assert store.version >= (18, 16)


def test_migrations_create_the_tables_and_run_once(store: Store, database: str) -> None:
    assert migrate(store, database) == [m.version for m in MIGRATIONS]
    assert migrate(store, database) == []
    recorded = store.query(f"SELECT version FROM {database}.schema_migrations FINAL")
    assert sorted(v for (v,) in recorded) == [m.version for m in MIGRATIONS]
    for table in ddl.EVENT_TABLES:
        described = store.query(f"DESCRIBE TABLE {database}.{table.name}")
        assert [row[0] for row in described] == table.column_names + list(ddl.LEDGER_COLUMNS)


def test_missing_tables_are_recreated_by_a_rerun_of_the_ddl(store: Store, database: str) -> None:
    migrate(store, database)
    for migration in MIGRATIONS:  # each is idempotent on its own
        migration.apply(store, database, ddl.Dialect(store.version))
    assert store.query(f"SELECT count() FROM {database}.results").scalar() == 0


def test_columnar_insert_and_query_with_parameters(store: Store, database: str) -> None:
    migrate(store, database)
    results = [make_result(i) for i in range(50)] + [make_result(1, system="it's \\ 'odd'")]
    assert store.insert(f"{database}.results", rows.result_columns(results)) == 51
    got = store.query(
        f"SELECT event_id, ts, system, rules, error_type, error_critical FROM {database}.results"
        " WHERE system = %(system)s AND ts >= %(since)s ORDER BY ts",
        {"system": "it's \\ 'odd'", "since": T0},
    )
    assert got.columns == ["event_id", "ts", "system", "rules", "error_type", "error_critical"]
    (row,) = got.rows
    assert row[0] == results[-1].event_id
    assert row[1] == T0.replace(second=1) and row[1].tzinfo is not None
    assert row[2:] == ("it's \\ 'odd'", ["r1"], None, None)
    injected = store.query(
        f"SELECT count() FROM {database}.results WHERE system = %(s)s", {"s": "x' OR '1'='1"}
    )
    assert injected.scalar() == 0


def test_rows_from_the_fast_decoders_structs_read_back_as_their_events(
    store: Store, database: str
) -> None:
    """What the sink inserts (columns from Structs: UUID, time, Nullable and Array columns)
    is stored as the events' own columns would be."""
    migrate(store, database)
    results = [make_result(i, segment="de" if i % 2 else None) for i in range(20, 30)]
    structs = fast_decode_structs([encode(r) for r in results], Result)
    store.insert(f"{database}.results", rows.result_columns(structs))
    names = ", ".join(ddl.RESULTS.column_names)
    got = store.query(f"SELECT {names} FROM {database}.results ORDER BY ts")
    assert [rows.model_of(Result, row) for row in got.dicts()] == results


def test_every_tables_columns_read_back_as_their_events(store: Store, database: str) -> None:
    """Each column of each event table (UUID, time, label, Nullable, Array, JSON) as the
    store gives it back, with the ledger's columns, from a batch as the sink inserts it."""
    migrate(store, database)
    why = Contributor(dimension="rule", value="r1", candidate=9, baseline=1, expected=0.5)
    window = AlertWindow(start=T0, end=T0 + timedelta(minutes=5))
    alert = Alert(rollout="kai", system="production", severity="critical", kind="rollback",
                  metric="success_rate", observed=0.8, threshold=0.9, window=window,
                  samples=120, ts=T0, contributors=[why])  # fmt: skip
    acted = {"alert_id": uuid.uuid4(), "action": AlertAction(weight_from=75, weight_to=0)}
    said = {"rollout": "kai", "query_id": "q1", "system": "pipeline", "verdict": "incorrect"}
    events = {
        Result: [make_result(i, segment="de" if i % 2 else None) for i in range(22)],
        Feedback: [Feedback(**said, ts=T0), Feedback(**said, comment="no", rules=["r1"], ts=T0)],
        Alert: [alert, alert.model_copy(update=acted | {"contributors": [], "dry_run": True})],
        RolloutEvent: [
            RolloutEvent(rollout="kai", type="weight_set", weight=25, ts=T0, actor="me"),
            RolloutEvent(rollout="kai", type="rollback", ts=T0, reason="it's bad"),
        ],
    }
    for model, models in events.items():
        table = rows.TABLE_OF[model]
        entries = Entries()
        entries.extend(TopicPartition("t", 3), list(range(7, 7 + len(models))), models)
        store.insert(f"{database}.{table.name}", entry_columns(table, entries))
        names = ", ".join(table.column_names)
        got = store.query(
            f"SELECT {names}, kafka_partition, kafka_offset FROM {database}.{table.name} "
            "ORDER BY kafka_offset"
        ).dicts()
        assert [rows.model_of(model, row) for row in got] == models
        assert [(r["kafka_partition"], r["kafka_offset"]) for r in got] == [
            (3, 7 + i) for i in range(len(models))
        ]


def test_datetime_parameters_are_compared_in_utc(store: Store, database: str) -> None:
    migrate(store, database)
    store.insert(f"{database}.results", rows.result_columns([make_result(i) for i in range(10)]))
    from zoneinfo import ZoneInfo

    since = datetime(2024, 5, 1, 14, 0, 5, tzinfo=ZoneInfo("Europe/Berlin"))  # 12:00:05 UTC
    got = store.query(
        f"SELECT count() FROM {database}.results WHERE ts >= %(since)s", {"since": since}
    )
    assert got.scalar() == 5


def test_a_duplicated_event_counts_once_with_final(store: Store, database: str) -> None:
    migrate(store, database)
    results = [make_result(i) for i in range(20)]
    table = f"{database}.results"
    store.insert(table, rows.result_columns(results))
    store.insert(table, rows.result_columns(results[:5]))  # redelivered
    assert store.query(f"SELECT count() FROM {table} FINAL").scalar() == 20
    assert store.query(f"SELECT uniqExact(event_id) FROM {table}").scalar() == 20


def test_columns_of_different_lengths_are_refused(store: Store, database: str) -> None:
    migrate(store, database)
    with pytest.raises(StoreError, match="different lengths"):
        store.insert(f"{database}.schema_migrations", {"version": [1, 2], "name": ["a"]})


def test_bad_sql_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError) as err:
        store.query("SELECT no_such_column FROM system.one")
    assert not isinstance(err.value, StoreUnavailable)
    assert "no_such_column" in str(err.value)


def test_empty_insert_is_a_no_op(store: Store, database: str) -> None:
    migrate(store, database)
    assert store.insert(f"{database}.results", rows.result_columns([])) == 0


def test_unreachable_server_says_what_to_do() -> None:
    from sinks.store.server import ServerStore

    with (
        ServerStore("clickhouse://default:@127.0.0.1:1") as store,
        pytest.raises(StoreUnavailable, match=r"not reachable.*PHASEGATE_CLICKHOUSE_URL"),
    ):
        store.query("SELECT 1")


def test_a_second_local_folder_in_one_process_says_what_to_do(tmp_path) -> None:
    pytest.importorskip("chdb")
    from sinks.store.local import LocalStore

    with LocalStore(tmp_path / "a") as first:
        first.query("SELECT 1")
        with pytest.raises(StoreUnavailable, match="PHASEGATE_STORE_PATH"):
            LocalStore(tmp_path / "b")
    with LocalStore(tmp_path / "b") as second:  # free again once the first is closed
        assert second.query("SELECT 41 + 1 AS x").scalar() == 42


def test_local_store_persists_across_reopen(tmp_path) -> None:
    pytest.importorskip("chdb")
    from sinks.store.local import LocalStore

    with LocalStore(tmp_path / "s") as store:
        migrate(store, "persist")
        store.insert("persist.results", rows.result_columns([make_result(1)]))
    with LocalStore(tmp_path / "s") as store:
        assert migrate(store, "persist") == []
        assert store.query("SELECT count() FROM persist.results").scalar() == 1


def test_datetime_results_come_back_as_utc_datetimes(store: Store) -> None:
    got = store.query(
        "SELECT toDateTime('2024-05-01 12:00:00', 'UTC') AS t, toUInt32(7) AS n, %(u)s AS u",
        {"u": uuid.UUID(int=1)},
    )
    assert got.rows == [(datetime(2024, 5, 1, 12, tzinfo=UTC), 7, str(uuid.UUID(int=1)))]


def test_an_insert_may_span_more_than_100_monthly_partitions(store: Store, database: str) -> None:
    """A replay of a long history: chdb refuses more than 100 partitions per insert block
    by default (max_partitions_per_insert_block)."""
    migrate(store, database)
    results = [make_result(i, ts=T0 - timedelta(days=31 * i)) for i in range(150)]
    assert store.insert(f"{database}.results", rows.result_columns(results)) == 150
    months = store.query(f"SELECT uniqExact(toYYYYMM(ts)) FROM {database}.results").scalar()
    assert months >= 140


def test_inserts_at_once_each_land_their_own_rows(store: Store, database: str) -> None:
    """As many inserts as the sink runs at once (``inserts_at_once`` threads, a client or
    session each), started together, store each its own rows: chdb finds each insert's
    Arrow table by name in the inserting thread, so a mix-up would show here."""
    migrate(store, database)
    at_once, rounds, size = store.inserts_at_once, 4, 2_000
    start = threading.Barrier(at_once, timeout=60)  # a thread that failed breaks it

    def insert(thread: int) -> None:
        for turn in range(rounds):
            system = f"thread-{thread}-{turn}"
            batch = [make_result(i, system=system) for i in range(size)]
            start.wait()
            store.insert(f"{database}.results", rows.result_columns(batch))

    with ThreadPoolExecutor(at_once) as pool:
        list(pool.map(insert, range(at_once)))
    got = store.query(
        f"SELECT system, count(), uniqExact(query_id) FROM {database}.results GROUP BY system"
    )
    assert sorted(got.rows) == sorted(
        (f"thread-{t}-{turn}", size, size) for t in range(at_once) for turn in range(rounds)
    )
