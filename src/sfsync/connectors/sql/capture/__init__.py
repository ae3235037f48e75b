"""Change capture on SQL databases: the SQL source and the tools that install its triggers.

* :mod:`.statements`: the SQL text per dialect (change log table, triggers, NOTIFY), pure.
* :mod:`.install`: looks at a live database and installs or removes capture.
* :mod:`.log`: reads the change log in commit order and writes outcomes back.
* :mod:`.changes`: change events from the change log, per database's reading plan.
* :mod:`.holes`: where a MariaDB/MySQL read may stop (holes in the sequence), pure.
* :mod:`.tables`: configured objects resolved against their tables; stream names.
* :mod:`.values`: column types as portable fields; row values in one form.
* :mod:`.poller`: the ``updated_at`` poller, where triggers are not allowed.
* :mod:`.listen`: PostgreSQL LISTEN/NOTIFY wake-ups.
* :mod:`.outcomes`: which status each sink outcome writes back.
* :mod:`.status`: what ``sfsync db capture-status`` shows.
* :mod:`.source`: :class:`~.source.SqlCaptureSource`, the :class:`~sfsync.spi.source.Source`.

``docs/sql-capture.md`` is the user's guide.
"""
