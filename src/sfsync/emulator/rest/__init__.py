"""The emulator's REST data API (``/services/data/vXX.X/...``).

``rest_routes()`` returns the Starlette routes the app mounts; handlers read the org from
``request.app.state.org``.
"""

from sfsync.emulator.rest.routes import rest_routes

__all__ = ["rest_routes"]
