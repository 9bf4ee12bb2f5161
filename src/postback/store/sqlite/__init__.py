"""SQLite's side of the store: SqliteBackend and the SQL it runs, by operation (ingest.py:
writing messages; queue.py: claiming and recording; raw.py: the sqlite3 connection under
SQLAlchemy's, run in its own thread)."""

from postback.store.sqlite.backend import SqliteBackend

__all__ = ["SqliteBackend"]
