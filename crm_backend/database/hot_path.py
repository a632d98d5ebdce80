"""The statements a patient waits on, run on asyncpg directly when the database is PostgreSQL.

Each message passes three statements while the patient waits: the webhook stores the push, the
worker reads what is pending and, after Rasa, stores the answers (a fourth, the record of an
ordinary bot turn, runs beside Rasa). Between turns the interpreter is cold and SQLAlchemy's engine
costs about as much as the statement itself (figures in docs/PERFORMANCE.md). The statements stay
SQLAlchemy Core: they are compiled once by SQLAlchemy's own asyncpg dialect, with the bind
processors of their types (JSON, UTC timestamps), and only the execution skips the engine.
Connections still come from the engine's pool. SQLite, and every other statement, go through
SQLAlchemy as usual.

This module is the one dialect switch of the application: `HotPath.on_asyncpg` says whether the
PostgreSQL forms run, and `insert_for` gives the dialect's INSERT with ON CONFLICT.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class CompiledForAsyncpg:
    """SQL with $n placeholders plus what turns named parameters into asyncpg's positional ones."""

    sql: str
    names: tuple[str, ...]
    processors: Mapping[str, Callable[[Any], Any]]
    #: Values bound in the statement itself (a literal status in a WHERE clause, say).
    fixed: Mapping[str, Any]

    @classmethod
    def of(cls, statement: ClauseElement, dialect: Dialect) -> CompiledForAsyncpg:
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        fixed = {
            name: bind.effective_value
            for name, bind in ((n, compiled.binds[n]) for n in names)
            if not bind.required
        }
        processors: dict[str, Callable[[Any], Any]] = {}
        for name in names:
            # The public form of what the engine does per parameter: the type's dialect-specific
            # implementation, then its bind processor (None when values pass unchanged).
            bind_type = compiled.binds[name].type
            process = bind_type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        return cls(compiled.string, names, processors, fixed)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values: list[Any] = []
        for name in self.names:
            value = params[name] if name in params else self.fixed[name]
            process = self.processors.get(name)
            values.append(process(value) if process is not None and value is not None else value)
        return values


class HotPath:
    """Runs hot statements for one engine: asyncpg on PostgreSQL, SQLAlchemy elsewhere.

    `single_statements` is the engine's autocommit variant: each statement commits on its own.
    `fast=False` keeps PostgreSQL on the general (ORM) forms too: the parity test compares both."""

    def __init__(self, single_statements: AsyncEngine, *, fast: bool = True) -> None:
        self.engine = single_statements
        dialect = single_statements.dialect
        self.on_asyncpg = fast and dialect.name == "postgresql" and dialect.driver == "asyncpg"
        self._compiled: dict[int, tuple[ClauseElement, CompiledForAsyncpg]] = {}

    def compiled(self, statement: ClauseElement) -> CompiledForAsyncpg:
        # Keyed by identity: hot statements are module-level objects built once. The statement is
        # kept alongside so its id cannot be reused by another object.
        entry = self._compiled.get(id(statement))
        if entry is None:
            entry = (statement, CompiledForAsyncpg.of(statement, self.engine.dialect))
            self._compiled[id(statement)] = entry
        return entry[1]

    async def fetch(self, statement: ClauseElement, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """All rows of one statement, committed on its own (autocommit)."""
        if not self.on_asyncpg:
            async with self.engine.connect() as connection:
                return list((await connection.execute(statement, dict(params))).all())
        compiled = self.compiled(statement)
        return await self.fetch_sql(compiled.sql, *compiled.arguments(params))

    async def fetch_sql(self, sql: str, *arguments: Any) -> list[Sequence[Any]]:
        """All rows of PostgreSQL-only SQL with positional arguments (on_asyncpg only)."""
        assert self.on_asyncpg, "fetch_sql is for PostgreSQL"
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            try:
                return list(await driver.fetch(sql, *arguments))
            except BaseException:
                if driver.is_closed():
                    # SQLAlchemy never saw this error: without being told, its pool would hand the
                    # dead connection out again after the database came back.
                    await connection.invalidate()
                raise


def insert_for(engine: AsyncEngine) -> Callable[..., Any]:
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING (PostgreSQL and SQLite alike)."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
