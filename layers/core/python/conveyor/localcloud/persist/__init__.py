"""The local cloud's state on disk: restored at start, snapshotted while it runs and at stop.

``store`` is the data directory (format, atomic swap, blobs); ``s3state``, ``services`` and
``executions`` copy moto's backends to records and back; ``snapshotter`` runs it all; ``restart``
decides what happens to the executions the stop interrupted. See docs/local-state.md.
"""
