"""Where a sync stands: one position per stream, plus snapshot progress.

The runtime owns checkpoints (sources never write them) and saves one only from what the
:class:`~sfsync.core.acks.AckTracker` says is safe. ``to_json``/``from_json`` give the stored
form; stores keep that text and never look inside.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Protocol

from sfsync.core.events import Position

SNAPSHOT_STREAM_PREFIX = "snapshot:"


def snapshot_stream(entity: str) -> str:
    """The stream name a source uses for the positions of ``entity``'s snapshot READ events.

    Their tokens are snapshot cursors (where to resume the entity's full read), kept in
    :attr:`SnapshotProgress.cursors` rather than among the change-stream positions.
    """
    return SNAPSHOT_STREAM_PREFIX + entity


class SnapshotStatus(enum.Enum):
    """How far the initial full read has come."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"


@dataclass(frozen=True, slots=True)
class SnapshotProgress:
    """Progress of a snapshot, so an interrupted one resumes instead of starting over.

    Attributes:
        status: overall status.
        done: entities whose snapshot finished.
        cursors: per unfinished entity, the connector's token for where to resume it.
        stream_start: per stream, the position taken *before* the snapshot began; streaming
            starts there so that nothing committed during the snapshot is missed.
    """

    status: SnapshotStatus = SnapshotStatus.NOT_STARTED
    done: frozenset[str] = frozenset()
    cursors: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    stream_start: Mapping[str, Position] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The durable state of one sync.

    Attributes:
        positions: per stream, the newest position whose events (and all before) are final.
        snapshot: snapshot progress.
    """

    positions: Mapping[str, Position] = field(default_factory=lambda: MappingProxyType({}))
    snapshot: SnapshotProgress = field(default_factory=SnapshotProgress)

    def advanced(self, positions: Mapping[str, Position]) -> Checkpoint:
        """A copy with ``positions`` merged over the current ones."""
        merged = dict(self.positions)
        merged.update(positions)
        return replace(self, positions=MappingProxyType(merged))

    def record(
        self, safe: Mapping[str, Position], completed: frozenset[str] = frozenset()
    ) -> Checkpoint:
        """A copy that records what the runtime now knows is final.

        Args:
            safe: per stream, the newest final position (from the ack tracker). Snapshot
                streams (see :func:`snapshot_stream`) become snapshot cursors; the others
                become change-stream positions.
            completed: entities whose snapshot finished; their cursors are dropped.
        """
        positions = dict(self.positions)
        cursors = dict(self.snapshot.cursors)
        for stream, position in safe.items():
            if stream.startswith(SNAPSHOT_STREAM_PREFIX):
                cursors[stream.removeprefix(SNAPSHOT_STREAM_PREFIX)] = position.token
            else:
                positions[stream] = position
        done = self.snapshot.done | completed
        for entity in done:
            cursors.pop(entity, None)
        return replace(
            self,
            positions=MappingProxyType(positions),
            snapshot=replace(self.snapshot, done=done, cursors=MappingProxyType(cursors)),
        )

    def to_json(self) -> str:
        """The stored form: stable, sorted JSON."""
        snap = self.snapshot
        return json.dumps(
            {
                "version": 1,
                "positions": {s: p.token for s, p in self.positions.items()},
                "snapshot": {
                    "status": snap.status.value,
                    "done": sorted(snap.done),
                    "cursors": dict(snap.cursors),
                    "stream_start": {s: p.token for s, p in snap.stream_start.items()},
                },
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """Parse the stored form.

        Raises:
            ValueError: the text is not a checkpoint this version understands.
        """
        try:
            data = json.loads(text)
            if data.get("version") != 1:
                raise ValueError(f"unsupported checkpoint version {data.get('version')!r}")
            snap = data["snapshot"]
            return cls(
                positions=MappingProxyType(
                    {s: Position(s, str(t)) for s, t in data["positions"].items()}
                ),
                snapshot=SnapshotProgress(
                    status=SnapshotStatus(snap["status"]),
                    done=frozenset(snap["done"]),
                    cursors=MappingProxyType({k: str(v) for k, v in snap["cursors"].items()}),
                    stream_start=MappingProxyType(
                        {s: Position(s, str(t)) for s, t in snap["stream_start"].items()}
                    ),
                ),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a valid checkpoint: {exc}") from exc


class CheckpointStore(Protocol):
    """Durable storage of checkpoints, one per sync id.

    Contract: ``save`` is atomic (a crash leaves the old or the new checkpoint, never a mix);
    ``load`` returns ``None`` for a sync never saved; ``delete`` forgets it (a full resync).
    """

    async def load(self, sync_id: str) -> Checkpoint | None:
        """The last saved checkpoint of ``sync_id``, or ``None``."""
        ...

    async def save(self, sync_id: str, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint of ``sync_id``."""
        ...

    async def delete(self, sync_id: str) -> None:
        """Forget ``sync_id``'s checkpoint."""
        ...

    async def list_ids(self) -> list[str]:
        """Every sync id with a stored checkpoint, sorted."""
        ...
