"""Append-only, hash-chained tables: every row carries the hash of the row before it.

Each row's hash covers its content and the previous row's hash, and ``chain_heads`` keeps
the length and newest hash of each chain. Editing a row breaks its own hash, deleting a
row breaks the next row's link, and deleting the newest rows shortens the chain below the
recorded length. Someone who can rewrite every later row and the head can still forge a
chain, so the database triggers that reject UPDATE and DELETE are the first defence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from . import as_utc
from .schema import CHAINED_TABLES, chain_heads

GENESIS = "0" * 64
_UNHASHED = {"id", "prev_hash", "row_hash"}


@dataclass(frozen=True)
class ChainProblem:
    """One place where a chain does not verify."""

    table: str
    row_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.table} row {self.row_id}" if self.row_id is not None else self.table
        return f"{where}: {self.problem}"


def append(connection: Connection, table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """Insert ``values`` as the next link of ``table``'s chain and return the stored row."""
    head = _lock_head(connection, table.name)
    row = dict(values)
    row["prev_hash"] = head["head_hash"]
    row["row_hash"] = row_hash(row, head["head_hash"])

    result = connection.execute(insert(table).values(**row))
    row["id"] = result.inserted_primary_key[0]
    connection.execute(update(chain_heads).where(chain_heads.c.chain == table.name)
                       .values(length=head["length"] + 1, head_hash=row["row_hash"]))
    return row


def row_hash(row: dict[str, Any], prev_hash: str) -> str:
    """Return the SHA-256 over ``prev_hash`` and the row's content in canonical JSON."""
    content = {key: _canonical(value) for key, value in row.items() if key not in _UNHASHED}
    payload = prev_hash + json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def verify(connection: Connection) -> list[ChainProblem]:
    """Return every edited, deleted or re-linked row of every chained table."""
    problems: list[ChainProblem] = []
    heads = {row.chain: row for row in connection.execute(select(chain_heads))}
    for name, table in CHAINED_TABLES.items():
        problems.extend(_verify_table(connection, table, heads.get(name)))
    return problems


def _verify_table(connection: Connection, table: Table, head) -> list[ChainProblem]:
    problems = []
    expected_prev = GENESIS
    count = 0
    for row in connection.execute(select(table).order_by(table.c.id)).mappings():
        count += 1
        if row["prev_hash"] != expected_prev:
            problems.append(ChainProblem(table.name, row["id"],
                                         "the row before it was deleted or changed"))
        if row_hash(dict(row), row["prev_hash"]) != row["row_hash"]:
            problems.append(ChainProblem(table.name, row["id"],
                                         "content was edited after it was recorded"))
        expected_prev = row["row_hash"]

    recorded_length = head.length if head is not None else 0
    recorded_head = head.head_hash if head is not None else GENESIS
    if count < recorded_length:
        where = "" if expected_prev == recorded_head else " from the end"
        problems.append(ChainProblem(table.name, None, f"{recorded_length - count} row(s) "
                                     f"deleted{where} (chain head records "
                                     f"{recorded_length}, found {count})"))
    elif count > recorded_length or expected_prev != recorded_head:
        problems.append(ChainProblem(table.name, None, "the newest row does not match the "
                                     "recorded chain head"))
    return problems


def _lock_head(connection: Connection, chain: str) -> dict[str, Any]:
    """Lock the chain's head row (creating it for a new chain) and return it.

    The UPDATE comes first so that SQLite takes its write lock and PostgreSQL its row lock
    before the head is read. Two writers can then never link to the same previous row.
    """
    touched = connection.execute(update(chain_heads).where(chain_heads.c.chain == chain)
                                 .values(length=chain_heads.c.length))
    if touched.rowcount == 0:
        connection.execute(insert(chain_heads).values(chain=chain, length=0, head_hash=GENESIS))
    head = connection.execute(select(chain_heads).where(chain_heads.c.chain == chain)).one()
    return {"length": head.length, "head_hash": head.head_hash}


def _canonical(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return as_utc(value).isoformat()
    return value
