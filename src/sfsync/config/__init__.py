"""The sync configuration: YAML files read with positions, validated whole, as frozen models.

Entry points::

    config = load_config(Path("sync.yaml"), registry)       # raises ConfigProblems
    problems = validate_file(Path("sync.yaml"), registry)   # [] when valid

See ``docs/configuration.md`` for every field.
"""

from sfsync.config.model import (
    Connection,
    DeadLetterConfig,
    ObjectSync,
    RetryConfig,
    StateConfig,
    SyncConfig,
    SyncDef,
    SyncDefaults,
)
from sfsync.config.problems import ConfigProblems, Problem
from sfsync.config.validate import load_config, parse_config, validate_document, validate_file

__all__ = [
    "ConfigProblems",
    "Connection",
    "DeadLetterConfig",
    "ObjectSync",
    "Problem",
    "RetryConfig",
    "StateConfig",
    "SyncConfig",
    "SyncDef",
    "SyncDefaults",
    "load_config",
    "parse_config",
    "validate_document",
    "validate_file",
]
