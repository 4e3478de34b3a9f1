"""Watching served models: metric names, per-model alarms, and what happens when an alarm fires."""
