"""Pipeline stages: one function per state of the state machine, each called by one thin handler.

Each stage receives the execution's state so far (``event["state"]``) and returns the JSON that
the state machine stores under the stage's name (``$.validation``, ``$.training``, ...). Large
things (data, models, holdouts) travel as S3 references, never inside the state.

``validate``, ``train`` and ``evaluate`` need pandas and scikit-learn (the training image);
``release`` (register, deploy) needs only the core package.
"""
