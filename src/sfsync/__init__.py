"""sfsync: keep Salesforce and the systems around it in sync.

The public surface for connector authors is :mod:`sfsync.spi` (protocols) and
:mod:`sfsync.core` (value types and errors). Everything else is the engine's own.
"""

__version__ = "0.1.0"
