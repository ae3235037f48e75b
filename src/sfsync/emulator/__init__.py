"""A local Salesforce org: REST, SOQL, OAuth, SOAP login, limits, validation and faults.

This package imports nothing from the rest of sfsync. It is a second, independent reading of
Salesforce's API, so that a bug in sfsync's client cannot be copied into it and hidden.
"""
