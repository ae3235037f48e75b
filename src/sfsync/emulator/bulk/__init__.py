"""Bulk API 2.0 (ingest and query) and Bulk API 1.0 for the emulator; mount ``bulk_routes()``."""

from sfsync.emulator.bulk.routes import bulk_routes

__all__ = ["bulk_routes"]
