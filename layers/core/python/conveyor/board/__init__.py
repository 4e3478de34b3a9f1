"""The big board: one view of how every model is doing (serving versions and traffic, requests,
latency, 5xx rate, drift, live metric against the holdout, business value, alarms, approvals waiting,
the last pipeline runs).

- :mod:`~conveyor.board.panels`: the charts, as metric queries (the CloudWatch dashboard builds its
  SEARCH expressions from the same list);
- :mod:`~conveyor.board.sources`: what the board reads, as ports;
- :mod:`~conveyor.board.document`: the board as one JSON-able document;
- :mod:`~conveyor.board.page`: the document as a self-contained HTML page (inline SVG charts);
- :mod:`~conveyor.board.actions`: approve and reject from a board (the same domain code as the CLI);
- :mod:`~conveyor.board.widget`: the CloudWatch custom widget (registry view, approve/reject buttons).

Imports no boto3, no pandas.
"""
