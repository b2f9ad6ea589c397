"""A store that refuses writes, for data a module's tests share and only read: made
once, then every connection the engine opens is read-only (SQLite ``PRAGMA
query_only``, PostgreSQL read-only transactions), so a test that wrote to it would fail
with ``StoreError`` instead of changing what the next test reads."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event

#: the ``params`` of a module-scoped fixture made once per database, with the same ids as
#: ``db_url``'s (dbfixtures), so the tests keep their ids
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def refuse_writes(engine: Engine) -> None:
    """From now on ``engine`` connects read-only; the connections it holds are closed."""
    statement = (
        "PRAGMA query_only = ON"
        if engine.dialect.name == "sqlite"
        else "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
    )

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
        # psycopg opened a transaction for the SET, and a SET rolled back is undone: the
        # session stayed read-only for its first transaction only
        dbapi_connection.commit()

    engine.dispose()
