"""Telling "the database is out of reach" apart from "this statement is wrong"."""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa


def unreachable(error: BaseException) -> bool:
    """True when trying again later may succeed: the server is down, restarting or cut off, or a
    pooled connection died with it. A statement the database refused is not such an error."""
    if isinstance(error, sa.DBAPIError):
        return error.connection_invalidated or isinstance(error, sa.OperationalError | sa.InterfaceError)
    return isinstance(
        error,
        OSError
        | TimeoutError
        | asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError,
    )
