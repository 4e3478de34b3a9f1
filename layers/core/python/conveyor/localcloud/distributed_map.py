"""What moto's Step Functions leaves out of a Distributed Map, done by the local cloud (the
definition stays the one deployed to AWS).

moto 5.2.5 runs a Distributed Map's items (ItemReader over ``s3:getObject`` JSON works), but its
ResultWriter writes a manifest listing no result file and drops the results
(``ResourceEvalS3._handle_put_object``: "TODO: generate result files"). ``install_result_writer``
replaces that one method: the results are written as AWS writes them, a ``SUCCEEDED_0.json``
(an array of ``{"Name", "Status", "Output"}``, ``Output`` a JSON string) beside a ``manifest.json``
that lists it, under ``{Prefix}/{map run id}/``; the Map's output is the pointer AWS returns
(``{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}``).
"""

from __future__ import annotations

import json
from typing import Any


def write_results(s3: Any, bucket: str, prefix: str, map_run_arn: str, results: list[Any]) -> str:
    """Write the result files and the manifest as AWS's ResultWriter does; the manifest's key."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    run = f"{prefix}{map_run_arn.rsplit(':', maxsplit=1)[-1]}/"
    entries = [
        {"Name": str(index), "Status": "SUCCEEDED", "Output": json.dumps(result, default=str)}
        for index, result in enumerate(results)
    ]
    body = json.dumps(entries).encode()
    files_key = f"{run}SUCCEEDED_0.json"
    s3.put_object(Bucket=bucket, Key=files_key, Body=body)
    manifest = {
        "DestinationBucket": bucket,
        "MapRunArn": map_run_arn,
        "ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": [{"Key": files_key, "Size": len(body)}]},
    }
    key = f"{run}manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=2).encode())
    return key


def install_result_writer() -> None:
    """Make moto's ResultWriter write the Map's results (see the module docstring)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3 import (
        ResourceEvalS3,
    )

    def _handle_put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        results = env.stack.pop()
        s3 = ResourceEvalS3._get_s3_client(
            resource_runtime_part=resource_runtime_part, state_credentials=state_credentials
        )
        map_run_arn = env.map_run_record_pool_manager.get_all().pop().map_run_arn
        items = results if isinstance(results, list) else [results]
        key = write_results(s3, parameters["Bucket"], parameters.get("Prefix", ""), map_run_arn, items)
        env.stack.append(
            {"MapRunArn": map_run_arn, "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": key}}
        )

    ResourceEvalS3._handle_put_object = staticmethod(_handle_put_object)  # type: ignore[method-assign]
