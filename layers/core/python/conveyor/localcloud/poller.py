"""The local side of Lambda's SQS event source mapping: poll a queue, hand batches to a function,
delete what it processed (promptly: moto's SQS slows down as a queue grows), leave its reported
failures for a retry and, after the queue's maxReceiveCount, its dead-letter queue."""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from conveyor.localcloud.runtime import LambdaRuntime

log = logging.getLogger(__name__)


class QueuePoller:
    def __init__(
        self,
        sqs: Any,
        runtime: LambdaRuntime,
        *,
        queue_url: str,
        queue_arn: str,
        function: str,
        batch_size: int,
        region: str,
    ) -> None:
        self._sqs = sqs
        self._runtime = runtime
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._function = function
        self._batch_size = max(1, min(batch_size, 10))
        self._region = region
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poller-{function}", daemon=True)
        self.batches = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        body = message["Body"]
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }

    def poll_once(self, wait_seconds: int = 1) -> int:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        self.batches += 1
        result = self._runtime.invoke(self._function, {"Records": [self._record(m) for m in messages]})
        if result.errored:
            log.warning("batch failed in %s: %s", self._function, result.payload)
            return len(messages)  # the whole batch becomes visible again, as on AWS
        failed = {f.get("itemIdentifier") for f in (result.payload or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("polling %s failed", self._queue_url)
                self._stop.wait(1.0)
