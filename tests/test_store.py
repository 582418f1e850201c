"""The store's unit of work on a real DuckDB file."""

import pyarrow as pa
import pytest

from feedback.errors import StoreError


def test_a_failed_statement_on_a_registered_table_reports_its_own_error(ws):
    with pytest.raises(StoreError, match="nope"):
        with ws.store().atomic() as tx, tx.registered(pa.table({"a": [1]})) as name:
            tx.execute(f"INSERT INTO events (seq) SELECT a FROM {name}")
            tx.execute(f"SELECT nope FROM {name}")
    assert ws.store().value("SELECT count(*) FROM events") == 0  # and the transaction was rolled back
    with ws.store().atomic() as tx, tx.registered(pa.table({"a": [7]})) as name:  # the connection works on
        assert tx.value(f"SELECT a FROM {name}") == 7
