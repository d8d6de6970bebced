"""Fixtures: a database URL and an open Store, on SQLite (tmp_path) and on PostgreSQL.

PostgreSQL tests use the server at APPKIT_TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432,
trust auth) and get a fresh database each (``appkit_test_<random>``, dropped afterwards), so
parallel runs never collide. They are skipped when the server is unreachable, unless
APPKIT_REQUIRE_POSTGRES=1 (CI), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _libpq_url(url: str) -> str:
    """The SQLAlchemy URL as a plain libpq URI that psycopg.connect accepts."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of the test PostgreSQL server (skip, or fail in CI, if unreachable)."""
    import psycopg

    from appkit.store.db import mask_url, normalize_url

    url = normalize_url(os.environ.get("APPKIT_TEST_POSTGRES_URL", DEFAULT_PG_URL))
    try:
        psycopg.connect(_libpq_url(url), connect_timeout=3).close()
    except Exception as e:  # any failure to reach it means "no server here"
        reason = f"PostgreSQL test server {mask_url(url)} is unreachable ({' '.join(str(e).split())}); " \
            "set APPKIT_TEST_POSTGRES_URL to run the PostgreSQL tests"
        if os.environ.get("APPKIT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"APPKIT_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL of a brand-new, empty PostgreSQL database, dropped after the test."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"appkit_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_url(pg_server), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq_url(pg_server), autocommit=True) as admin:
            # FORCE: a test that failed midway may leave pooled connections behind.
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL of a not-yet-existing SQLite file in a not-yet-existing directory."""
    return f"sqlite:///{tmp_path / 'home' / 'appkit.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[object]:
    """An open Store migrated to head, on each backend."""
    from appkit.store import open_store

    s = open_store(url=db_url, upgrade=True)
    try:
        yield s
    finally:
        s.close()
