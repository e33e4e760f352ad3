"""The server's store: SQLAlchemy Core tables (:mod:`.tables`), Alembic migrations (``alembic/``, run by
:func:`.db.migrate`), plain records (:mod:`.records`) and one repository protocol per aggregate with its
SQL implementation (:mod:`.repos`). SQLite by default (a file under the data folder), PostgreSQL by URL.

Only the server, its services and ``garrison server`` import this package (SQLAlchemy and Alembic are the
``garrison[server]`` extra); ``garrison scan`` never does.
"""
