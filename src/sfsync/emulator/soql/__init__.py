"""The emulator's SOQL engine: parser, binder, executor.

Use :func:`compile_query` (then :meth:`CompiledQuery.run`) for queries and
:func:`compile_condition` for validation-rule conditions. Records are read through the
:class:`RecordSource` protocol; :class:`MemorySource` is a dict-backed implementation.

Pipeline: ``parser`` (lark LALR, ``grammar.lark``) builds the typed :mod:`.ast`; the binder
(``names`` -> ``condition_binding`` -> ``binder`` / ``aggregate_binding``) resolves every
name against the schema into an immutable :mod:`.plan`; each run turns the plan into
closures (``predicates``, ``render``, ``aggregate``) and streams records (``executor``).

Supported: field lists with relationship paths of any depth, child subqueries (nested),
``TYPEOF``, ``FIELDS(ALL|STANDARD|CUSTOM)``, ``toLabel``/``FORMAT``/``convertCurrency``,
aggregates (``COUNT()``, ``COUNT``, ``COUNT_DISTINCT``, ``SUM``, ``AVG``, ``MIN``, ``MAX``)
with ``GROUP BY`` (also ``ROLLUP``/``CUBE`` and ``GROUPING()``) and ``HAVING``; ``WHERE``
with every comparison operator, ``LIKE``, ``IN``/``NOT IN`` lists, semi- and anti-joins,
``INCLUDES``/``EXCLUDES``, date, datetime, time and relative date literals, date functions;
``ORDER BY`` with ``NULLS FIRST|LAST``, ``LIMIT``, ``OFFSET`` (at most 2,000); ``USING
SCOPE``, ``WITH``, ``FOR VIEW|REFERENCE|UPDATE``, ``UPDATE TRACKING|VIEWSTAT`` and ``ALL ROWS``.
Not supported: ``WITH DATA CATEGORY``, geolocation functions (``DISTANCE``),
currency-prefixed literals, Apex bind variables.

Where Salesforce's behaviour is not documented, the choice is stated in the docstring of the
module that implements it (null semantics in ``predicates``, literal type errors in
``condition_binding``, relative dates in ``dates``, message excerpts in ``messages``).
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
