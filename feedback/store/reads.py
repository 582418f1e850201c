"""What both store backends offer alike: one-statement reads, each its own unit of work."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


class Reads:
    """`store.rows`, `store.value`, `store.arrow`: a statement on a connection of its own (`connect`)."""

    def rows(self, sql: str, params=None) -> list[dict]:
        with self.connect() as tx:
            return tx.rows(sql, params)

    def value(self, sql: str, params=None):
        with self.connect() as tx:
            return tx.value(sql, params)

    def arrow(self, sql: str, params=None) -> pa.Table:
        with self.connect() as tx:
            return tx.arrow(sql, params)
