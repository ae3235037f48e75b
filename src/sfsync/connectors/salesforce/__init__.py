"""The Salesforce connector: REST, Bulk API 2.0 and Change Data Capture, against a real org or
the emulator.

Its connection section is
:class:`~sfsync.connectors.salesforce.config.SalesforceConnection`.
"""
