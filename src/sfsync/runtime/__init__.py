"""The imperative shell that runs one configured sync: retries, acks, checkpoints, status."""

from sfsync.runtime.executor import call_with_retry
from sfsync.runtime.pipeline import Pipeline, PipelineOptions, RunMode
from sfsync.runtime.status import Counters, PipelineStatus

__all__ = [
    "Counters",
    "Pipeline",
    "PipelineOptions",
    "PipelineStatus",
    "RunMode",
    "call_with_retry",
]
