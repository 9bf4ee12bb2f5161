"""PostgreSQL's side of the store: PostgresBackend and the SQL it runs, by operation
(ingest.py: writing messages; queue.py: claiming and recording; feed.py: the events
feed's horizon; raw.py: the driver's connection under SQLAlchemy's)."""

from postback.store.pg.backend import WORK_CHANNEL, PostgresBackend

__all__ = ["WORK_CHANNEL", "PostgresBackend"]
