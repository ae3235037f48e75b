"""The Pub/Sub API's protobuf and gRPC modules, generated from ``pubsub_api.proto`` by
``make proto`` and checked in (the runtime needs no protoc).

The message classes live in a *private* descriptor pool (``make proto`` rewrites the generated
module to use one): a process that also loads Salesforce's own generated ``eventbus.v1``
classes, as any Pub/Sub client does, would otherwise fail with "duplicate symbol". The wire
format is the same either way.
"""
