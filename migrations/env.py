"""Alembic environment for appkit.

appkit calls Alembic programmatically and hands over an open connection in
``config.attributes["connection"]`` (so SQLite gets its WAL / foreign-key / BEGIN IMMEDIATE
set-up from appkit's engine). Run by hand with ``sqlalchemy.url`` set, it builds its own engine.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection

from appkit.store.models import Base

config = context.config
target_metadata = Base.metadata

# Any constant works; it only has to be the same in every appkit process.
_PG_MIGRATION_LOCK = 0x61707063  # "appc"


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two processes upgrading at once: the second waits, then finds the schema at head.
            # (SQLite gets the same from appkit's BEGIN IMMEDIATE.)
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``--sql``) without a database."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the connection appkit passed in, or one made from ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("migrations/env.py: set sqlalchemy.url or pass a connection")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
