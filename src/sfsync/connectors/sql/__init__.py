"""The SQL connector: PostgreSQL, MySQL/MariaDB and SQLite through SQLAlchemy Core.

Its connection sections are the models in :mod:`sfsync.connectors.sql.config`.
"""
