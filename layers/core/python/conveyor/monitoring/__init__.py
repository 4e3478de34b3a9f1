"""Watching models in production (issue 12): metric names, per-model alarms and the actions taken when
one fires, the live monitor, delayed labels and schedules.

Modules: ``metrics`` (metric names), ``alarms`` (per-model alarm definitions and their sync), ``actions``
(``on_alarm``: notify, rollback, retrain), ``scores`` (score distributions: holdout vs live), ``window``
(the capture of a time window, per version), ``labels`` (label files joined with served records),
``live`` (``run_monitor``), ``schedule`` (the monitor tick and the retrain schedule); their S3 keys are
in ``conveyor.layout``.
"""
