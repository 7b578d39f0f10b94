"""Database connections and the one place where database errors are classified."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row

# SQLSTATE classes worth retrying: connection exception, transaction rollback
# (serialization failure, deadlock), insufficient resources, operator
# intervention (admin shutdown, cannot connect now), system error.
# PostgreSQL manual, Appendix A "PostgreSQL Error Codes".
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# And single codes of other classes: read_only_sql_transaction (a standby after
# failover, or a database set read-only), lock_not_available, object_in_use.
TRANSIENT_SQLSTATES = frozenset({"25006", "55P03", "55006"})


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later may succeed; False for bad data or SQL."""
    if isinstance(exc, psycopg.Error):
        sqlstate = exc.sqlstate
        if sqlstate is None:
            # No SQLSTATE: the connection broke before the server could answer.
            return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        return sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES or sqlstate in TRANSIENT_SQLSTATES
    return isinstance(exc, OSError)


def connect(
    url: str, *, autocommit: bool = False, application_name: str = "parkenergy"
) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection; the caller owns and closes it."""
    return psycopg.connect(url, autocommit=autocommit, application_name=application_name, connect_timeout=10)


def fetch_dicts(
    conn: psycopg.Connection[Any], query: str, params: Mapping[str, object] | None = None
) -> list[dict[str, Any]]:
    """The rows of ``query`` as dictionaries keyed by column name."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()
