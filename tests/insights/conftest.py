"""Fixtures: the store on SQLite and PostgreSQL (tests/store's), and a small support history to report on."""

from __future__ import annotations

from tests.store.conftest import db_url, pg_server, pg_url, sqlite_url, store  # noqa: F401 - fixtures
