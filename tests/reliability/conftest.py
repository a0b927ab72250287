"""Fixtures of the reliability tests: a database per test (SQLite file or PostgreSQL), the
sandbox on loopback.  No test here uses pytest-django's test database."""

from __future__ import annotations

import os
import time

import pytest

from . import harness

BACKENDS = ["sqlite", "postgresql"]


def _leg() -> str:
    """The suite runs once per database (see scripts/test.sh); each leg runs its own rows."""
    return "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"


def _only_in_its_leg(backend: str) -> None:
    if backend != _leg():
        pytest.skip(f"{backend} run: part of the {backend} leg of the suite (scripts/test.sh)")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/reliability/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory):
    return harness.SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def _pg_template(tmp_path_factory):
    reason = harness.pg_unreachable_reason()
    if reason:
        pytest.skip(reason)
    template = harness.PostgresTemplate(tmp_path_factory.mktemp("pg-template"))
    yield template
    template.close()


@pytest.fixture
def sandbox():
    """The sandbox in this process (port 0), knowing the test account's token."""
    from pinterest_capi.sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0, accounts={harness.ACCOUNT_ID: harness.TOKEN})
    server.start()
    yield server
    server.stop()


def _make_db(backend, request, tmp_path, sandbox):
    _only_in_its_leg(backend)
    if backend == "sqlite":
        db = request.getfixturevalue("_sqlite_template").new(tmp_path)
        template = None
    else:
        template = request.getfixturevalue("_pg_template")
        db = template.new(tmp_path)
    db.api_base_url = sandbox.url
    db.call("create_account", ad_account_id=harness.ACCOUNT_ID, token=harness.TOKEN)
    return db, template


@pytest.fixture(params=BACKENDS)
def rel_db(request, tmp_path, sandbox):
    """A fresh database with one ad account known to the sandbox, on each backend."""
    db, template = _make_db(request.param, request, tmp_path, sandbox)
    yield db
    if template is not None:
        template.drop(db)


@pytest.fixture
def pg_db(request, tmp_path, sandbox):
    """A fresh PostgreSQL database with one ad account (PostgreSQL-only rows)."""
    db, template = _make_db("postgresql", request, tmp_path, sandbox)
    yield db
    template.drop(db)


@pytest.fixture
def sqlite_db(request, tmp_path, sandbox):
    """A fresh SQLite file database with one ad account."""
    db, _ = _make_db("sqlite", request, tmp_path, sandbox)
    return db


@pytest.fixture
def stopwatch():
    started = time.monotonic()
    return lambda: time.monotonic() - started
