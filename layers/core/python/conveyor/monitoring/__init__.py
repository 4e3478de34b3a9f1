"""Watching models in production: the live monitor, delayed labels, schedules and alarms (issue 12).

Modules: ``metrics`` (metric names), ``scores`` (score distributions: holdout vs live), ``window``
(the capture of a time window, per version), ``labels`` (label files joined with served records),
``live`` (``run_monitor``), ``schedule`` (the monitor tick and the retrain schedule); their S3 keys are in ``conveyor.layout``.
"""
