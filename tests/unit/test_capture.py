"""Capture: sampling, the S3 layout, batching, and failures that never reach a request."""

import json
import re

from conveyor.adapters.memory import MemoryObjectStore
from conveyor.capture import BatchingS3Capture, captured, record_line
from conveyor.layout import capture_key

KEY = re.compile(r"^doctor-visits/capture/\d{4}/\d{2}/\d{2}/\d{2}/[0-9a-f-]{36}\.jsonl$")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(i: int, model: str = "doctor-visits") -> dict:
    return {"model": model, "request_id": f"r-{i}", "timestamp": 1795000000.0 + i, "predictions": [1]}


def test_sampling_is_stable_per_request_id_and_close_to_the_rate():
    ids = [f"request-{i}" for i in range(20000)]
    chosen = [captured(i, 0.1) for i in ids]
    assert chosen == [captured(i, 0.1) for i in ids]
    assert abs(sum(chosen) / len(ids) - 0.1) < 0.01
    assert all(captured(i, 1.0) for i in ids[:100]) and not any(captured(i, 0.0) for i in ids[:100])


def test_key_layout_is_the_utc_hour_of_the_first_record():
    key = capture_key("doctor-visits", 1795000000.0)  # 2026-11-18 11:06:40 UTC
    assert KEY.match(key) and key.startswith("doctor-visits/capture/2026/11/18/11/")


def test_a_batch_is_written_at_the_record_limit_one_object_per_model():
    store = MemoryObjectStore()
    writer = BatchingS3Capture(store, "capture", max_records=4, background=False)
    writer.put([_record(0), _record(1, "other")])
    assert store.keys("capture") == []
    writer.put([_record(2), _record(3)])
    keys = store.keys("capture")
    assert len(keys) == 2 and all(KEY.match(k.replace("other/", "doctor-visits/")) for k in keys)
    lines = store.get("capture", next(k for k in keys if k.startswith("doctor-visits/"))).decode().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["r-0", "r-2", "r-3"]


def test_a_batch_is_written_when_its_oldest_record_has_waited_long_enough():
    store, clock = MemoryObjectStore(), Clock()
    writer = BatchingS3Capture(store, "capture", max_records=100, max_seconds=1.0, clock=clock, background=False)
    writer.put([_record(0)])
    clock.now = 0.9
    writer.flush_if_due()
    assert store.keys("capture") == []
    clock.now = 1.0
    writer.flush_if_due()
    assert len(store.keys("capture")) == 1 and writer.written == 1


def test_the_background_timer_flushes_without_further_requests():
    store = MemoryObjectStore()
    writer = BatchingS3Capture(store, "capture", max_seconds=0.05)
    writer.put([_record(0)])
    import time

    deadline = time.monotonic() + 5
    while not store.keys("capture") and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.close()
    assert len(store.keys("capture")) == 1


def test_a_failed_write_is_counted_never_raised():
    class Broken(MemoryObjectStore):
        def put(self, *args, **kwargs):
            raise OSError("disk full")

    writer = BatchingS3Capture(Broken(), "capture", max_records=1, background=False)
    writer.put([_record(0)])
    assert writer.dropped == 1 and writer.written == 0


def test_records_are_strict_json_lines_and_oversized_ones_keep_their_metadata():
    line = record_line({**_record(0), "inputs": [{"age": 40}]})
    assert line.endswith(b"\n") and json.loads(line)["inputs"] == [{"age": 40}]
    huge = record_line({**_record(0), "inputs": [{"text": "x" * 2_000_000}]})
    parsed = json.loads(huge)
    assert parsed["truncated"] is True and parsed["inputs"] == [] and parsed["request_id"] == "r-0"


class FakeFirehose:
    """put_record_batch that refuses the first ``refuse`` records of each of its first ``times`` calls."""

    def __init__(self, refuse: int = 0, times: int = 0) -> None:
        self.calls: list[list[bytes]] = []
        self.refuse, self.times = refuse, times

    def put_record_batch(self, DeliveryStreamName, Records):  # boto3's parameter names
        self.calls.append([r["Data"] for r in Records])
        failing = self.refuse if len(self.calls) <= self.times else 0
        results = [{"ErrorCode": "ServiceUnavailableException"} if i < failing else {} for i in range(len(Records))]
        return {"FailedPutCount": min(failing, len(Records)), "RequestResponses": results}


def test_firehose_puts_json_lines_in_batches_of_500():
    from conveyor.adapters.aws import FirehoseCapture

    client = FakeFirehose()
    FirehoseCapture("capture", client=client).put([_record(i) for i in range(1200)])
    assert [len(c) for c in client.calls] == [500, 500, 200]
    assert json.loads(client.calls[0][0]) == _record(0) and client.calls[0][0].endswith(b"\n")


def test_firehose_retries_refused_records_once_then_raises():
    import pytest

    from conveyor.adapters.aws import FirehoseCapture

    client = FakeFirehose(refuse=2, times=1)
    FirehoseCapture("capture", client=client).put([_record(i) for i in range(5)])
    assert [len(c) for c in client.calls] == [5, 2]  # only the two refused ones again
    client = FakeFirehose(refuse=2, times=2)
    with pytest.raises(RuntimeError, match="refused 2"):
        FirehoseCapture("capture", client=client).put([_record(i) for i in range(5)])
