"""DuckDB over every FDA run: the ``telemetry`` and ``events`` views, one definition for all readers."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

try:
    import duckdb
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"FDA run queries need duckdb: pip install 'otel-tele[capsule]' ({exc})") from exc

from . import _capsule_schema as schema
from ._capsule_flow import MODES

_DUCK_TYPES = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
}


def patterns(root: Path, table: str) -> list[str]:
    """Glob patterns of every ``table`` file under ``root`` (runs, then flows)."""
    found = [str(root / "runs" / "fda_run_*" / f"{table}.parquet")]
    found += [str(root / "flows" / "*" / f"{mode}_{table}.parquet" / "*.parquet") for mode in MODES]
    return found


def view_sql(root: Path, table: str) -> str:
    """``SELECT`` over the files that exist now (an empty typed relation when there are none)."""
    live = [p for p in patterns(root, table) if glob.glob(p)]
    if not live:
        columns = ", ".join(
            f'CAST(NULL AS {_DUCK_TYPES[str(f.type)]}) AS "{f.name}"' for f in schema.SCHEMAS[table]
        )
        return f"SELECT {columns} WHERE false"
    files = ", ".join(_literal(p) for p in live)
    return f"SELECT * FROM read_parquet([{files}], union_by_name = true)"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def check_versions(con: Any, root: Path) -> None:
    """Raise NewerSchemaError if any Parquet file under ``root`` is newer than this library."""
    live = [p for table in schema.TABLES for p in patterns(root, table) if glob.glob(p)]
    if not live:
        return
    files = ", ".join(_literal(p) for p in live)
    key = schema.VERSION_KEY.decode()
    rows = con.execute(
        f"SELECT file_name, value FROM parquet_kv_metadata([{files}]) WHERE decode(key) = {_literal(key)}"
    ).fetchall()
    for file_name, value in rows:
        schema.check_version(bytes(value), file_name)


def connect(root: Path, *, database: str = ":memory:", check: bool = True) -> Any:
    """A DuckDB connection with ``telemetry`` and ``events`` views over every run and flow file."""
    con = duckdb.connect(database)
    if check:
        check_versions(con, root)
    for table in schema.TABLES:
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {view_sql(root, table)}")
    return con


def refresh_database(root: Path) -> Path:
    """(Re)define the views inside ``<root>/duckdb.db`` for users of the DuckDB CLI or other tools."""
    path = root / "duckdb.db"
    root.mkdir(parents=True, exist_ok=True)
    con = connect(root.resolve(), database=str(path), check=False)
    con.close()
    return path
