"""Conveyor: serverless, event-driven MLOps (the domain package, shipped to Lambda as a layer)."""

__version__ = "0.1.0"
