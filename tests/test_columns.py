"""The one table declaration every sink derives its storage from (``otel_tele._columns``): column
types come from the vocabulary, and each sink's DDL, Arrow schema and row mapping follow from it."""

from __future__ import annotations

import pyarrow as pa
import pytest
from otel_tele.exporters.capsule import schema as capsule
from otel_tele.exporters.postgres import _rows as postgres_rows
from otel_tele.exporters.postgres import schema as postgres
from otel_tele.exporters.sqlite import _mapping as sqlite_mapping
from otel_tele.exporters.sqlite import schema as sqlite

from otel_tele import semconv
from otel_tele._columns import Col, StoredTable
from otel_tele.semconv import AttrType
from otel_tele.semconv import robot as r

SQL = {AttrType.INT: "INTEGER", AttrType.FLOAT: "REAL", AttrType.STR: "TEXT", AttrType.JSON: "TEXT"}


def test_a_column_takes_its_type_from_the_vocabulary() -> None:
    table = StoredTable(
        "t",
        (r.DDS_COMMAND,),
        (
            Col("ts", "@ts", required=True),
            Col("funcode", r.FUNCODE, required=True),
            Col("target", r.TARGET_VALUE),
            Col("data", r.DATA_JSON),
            Col("level", r.FUNCODE, storage="INTEGER DEFAULT 1"),
        ),
    )
    assert table.types == (AttrType.FLOAT, AttrType.INT, AttrType.FLOAT, AttrType.JSON, AttrType.INT)
    assert table.sql_columns(SQL) == (
        "ts REAL NOT NULL",
        "funcode INTEGER NOT NULL",
        "target REAL",
        "data TEXT",
        "level INTEGER DEFAULT 1",
    )
    mapped = table.mapping()
    assert mapped.event == r.DDS_COMMAND and mapped.column_names == table.column_names
    # JSON travels as its text: the row holds a string, never JSON of the JSON.
    assert [c.type for c in mapped.columns][3] is AttrType.STR


def test_a_key_no_feeding_event_declares_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match=r"t\.x: no type for 'robot.camera.id'"):
        StoredTable("t", (r.DDS_COMMAND,), (Col("x", r.CAMERA_ID),))
    with pytest.raises(ValueError, match="has no type"):
        StoredTable("t", (r.DDS_COMMAND,), (Col("x", "@nothing"),))
    # Declared explicitly, a column may take a key the vocabulary does not know.
    assert StoredTable("t", (r.DDS_COMMAND,), (Col("x", "other", AttrType.STR),)).types == (AttrType.STR,)


def test_the_columns_a_schema_version_added_are_its_migration() -> None:
    table = postgres.ROW_TABLE
    types = {AttrType.STR: "text", AttrType.FLOAT: "real", AttrType.JSON: "jsonb", "ts": "timestamptz"}
    assert table.sql_columns(types, since=3) == ("trace_id text", "span_id text")
    assert len(table.sql_columns(types, since=1)) == len(table.columns) - 2
    assert [statement for statement, _ in postgres.MIGRATIONS[2]("postgresql")] == [
        "ALTER TABLE {t} ADD COLUMN trace_id text",
        "ALTER TABLE {t} ADD COLUMN span_id text",
    ]


def test_every_sink_table_is_typed_as_the_vocabulary_says() -> None:
    declared = [*sqlite.TABLES.values(), *capsule.TABLES.values(), postgres.ROW_TABLE]
    for table in declared:
        for column, kind in zip(table.columns, table.types, strict=True):
            if column.type is not None or column.source.startswith("@"):
                continue
            for name in table.events:
                attr = semconv.EVENTS[name].attributes_by_key.get(column.source)
                assert attr is None or attr.type is kind, (table.name, column.name)


def test_derived_storage_follows_the_declaration() -> None:
    for name, table in capsule.TABLES.items():
        assert capsule.SCHEMAS[name].names == list(table.column_names)
    assert capsule.SCHEMAS["telemetry"].field("ts").type == pa.timestamp("us", tz="UTC")
    assert capsule.SCHEMAS["events"].field("payload").type == pa.string()  # JSON as its text
    for name, table in sqlite.TABLES.items():
        assert sqlite.columns(name) == ("id", *table.column_names)
        assert f"({', '.join(table.column_names)})" in sqlite.INSERTS[name]
    assert postgres.ROW_TABLE.column_names == postgres.ROW_COLUMNS


def test_the_generated_row_functions_serve_every_table_an_event_feeds() -> None:
    """The fast path is kept: a row function is generated for every event-fed table."""
    assert set(sqlite_mapping.MAPPER._typed_rows) == {t.events[0] for t in sqlite.TABLES.values()}
    assert set(postgres_rows.MAPPER._typed_rows) == set(postgres.ROW_EVENTS)


def test_a_run_folders_own_files_are_never_artifact_names() -> None:
    """The capsule sink owns its file names; the vocabulary's artifact-name rule, which the recorder
    applies before emitting, must refuse each of them."""
    own = [*capsule.RUN_FOLDER_FILES, *(f"{table}{capsule.JOURNAL_SUFFIX}" for table in capsule.TABLES)]
    for name in own:
        assert capsule.is_run_file(name)
        with pytest.raises(ValueError):
            semconv.fda.check_artifact_name(name)
    assert not capsule.is_run_file("checkpoint_0001.pkl")
