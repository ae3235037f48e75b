"""The emulator's SOQL engine: parser, binder, executor.

Use :func:`compile_query` (then :meth:`CompiledQuery.run`) for queries and
:func:`compile_condition` for validation-rule conditions. Records are read through the
:class:`RecordSource` protocol; :class:`MemorySource` is a dict-backed implementation.
"""

from .catalog import Record, RecordSource
from .executor import CompiledQuery, Condition, QueryResult, compile_condition, compile_query
from .memory import MemorySource

__all__ = [
    "CompiledQuery",
    "Condition",
    "MemorySource",
    "QueryResult",
    "Record",
    "RecordSource",
    "compile_condition",
    "compile_query",
]
