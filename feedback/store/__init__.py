"""The store: the only package that imports duckdb or psycopg. Two backends offer the same operations:
`Store`, the embedded DuckDB file (the default), and `postgres.PgStore`, the team store on PostgreSQL.

A unit of work is `with store.atomic() as tx:` (a transaction) or `with store.connect() as tx:`;
`tx.rows`, `tx.value`, `tx.arrow` return plain data and `tx.insert` appends an Arrow table.
"""

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .embedded import Store, Tx, quote, scratch

__getattr__, __dir__, __all__ = exports(__name__, __file__)
