"""The training image's entry point (``layers/training/Dockerfile``): one image, three ways to run.

- **Lambda** (validate, train, evaluate, ... : the function's CMD names its handler): hands over to the
  Lambda runtime's own entry point, unchanged.
- **ECS Fargate task** ("Train on Fargate"): the task's container override sets ``CONVEYOR_TRAIN_INPUT``,
  the artifact-bucket key of the staged Train input (conveyor.layout.TRAINING_INPUT).
- **SageMaker training job** ("Train on SageMaker"): SageMaker runs the image with the argument
  ``train``; the key is the job's hyperparameter ``input_key``, in
  ``/opt/ml/input/config/hyperparameters.json``. A failure is written to ``/opt/ml/output/failure``
  (the job's FailureReason).

Both containers run :func:`conveyor.stages.train.train_from_pointer`, the Train stage's own domain
function, which writes the result beside the input for "Read training result". The exit code is 0 on
success, 1 on failure. Only the standard library (and conveyor.compute's constants) is imported before
the mode is known, so a Lambda's cold start pays next to nothing for this step.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from conveyor.compute import ECS_INPUT_ENV, INPUT_HYPERPARAMETER, SAGEMAKER_COMMAND

Mode = Literal["lambda", "ecs", "sagemaker"]

SAGEMAKER_ROOT = Path("/opt/ml")
LAMBDA_ENTRYPOINT = "/lambda-entrypoint.sh"  # the Lambda base image's own ENTRYPOINT

log = logging.getLogger("conveyor.train.container")


def mode_of(argv: Sequence[str], environ: Mapping[str, str]) -> Mode:
    if list(argv[:1]) == [SAGEMAKER_COMMAND]:
        return "sagemaker"
    if environ.get(ECS_INPUT_ENV):
        return "ecs"
    return "lambda"


def input_key(mode: Mode, environ: Mapping[str, str], sagemaker_root: Path = SAGEMAKER_ROOT) -> str:
    """The staged input's key: the task's environment override, or the job's hyperparameter."""
    if mode == "ecs":
        return environ[ECS_INPUT_ENV]
    hyperparameters = json.loads((sagemaker_root / "input" / "config" / "hyperparameters.json").read_text())
    return str(hyperparameters[INPUT_HYPERPARAMETER])


def train_pointer(key: str) -> None:
    from conveyor.stages.context import PipelineContext
    from conveyor.stages.train import train_from_pointer

    train_from_pointer(key, PipelineContext.for_this_container())


def exec_lambda_runtime(argv: Sequence[str]) -> None:
    os.execv(LAMBDA_ENTRYPOINT, [LAMBDA_ENTRYPOINT, *argv])  # noqa: S606 - the base image's entry point


def main(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    train: Callable[[str], None] = train_pointer,
    run_lambda: Callable[[Sequence[str]], None] = exec_lambda_runtime,
    sagemaker_root: Path = SAGEMAKER_ROOT,
) -> int:
    """Run the image as ``argv`` and ``environ`` say (see the module docstring); the exit code."""
    mode = mode_of(argv, environ)
    if mode == "lambda":
        run_lambda(argv)
        return 0
    try:
        key = input_key(mode, environ, sagemaker_root)
        log.info("training from %s (%s)", key, mode)
        train(key)
    except Exception as error:
        log.exception("training failed (%s)", mode)
        if mode == "sagemaker":
            failure = sagemaker_root / "output" / "failure"
            failure.parent.mkdir(parents=True, exist_ok=True)
            failure.write_text(f"{type(error).__name__}: {error}"[:1024])
        return 1
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main(sys.argv[1:], os.environ))
