"""Adapters implementing ``conveyor.ports``: boto3 (``aws``) and in-memory (``memory``)."""
