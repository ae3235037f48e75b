"""The emulator's streaming side: Change Data Capture, platform events, the Pub/Sub API (gRPC)
and CometD (reference sections 5 and 6).

* :mod:`.bus`: the org's event log (replay ids, 72-hour retention on the org clock, waking);
* :mod:`.cdc`, :mod:`.layout`, :mod:`.events`: change events built from the store's commits;
* :mod:`.avro`: Avro schemas, payloads and changed-field bitmaps of the Pub/Sub API;
* :mod:`.service`: :func:`~.service.attach` gives an org its :class:`~.service.Streaming` hub;
* :mod:`.pubsub`, :mod:`.grpc_server`: the ``eventbus.v1.PubSub`` service and
  :func:`~.grpc_server.start_grpc`;
* :mod:`.cometd`, :mod:`.cometd_render`, :mod:`.routes`: Bayeux long-polling at
  ``/cometd/<version>`` and the ``/__emulator__/streaming`` admin endpoint.
"""
