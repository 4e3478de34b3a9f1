"""The S3 layout (README, "S3 layout"): every key Conveyor reads or writes is built here.

Data bucket
    ``{model}/incoming/...``            a drop (starts the pipeline)
    ``{model}/accepted/{sha16}/{file}``  accepted data, ``{file}.report.json`` (validation) and
                                         ``{file}.drift.json`` (drift) beside it
    ``{model}/quarantine/{sha16}/{file}`` rejected data, its ``.report.json`` beside it
    A drop split by ``validation.max_bad_row_share``: the accepted rows at the accepted key, the
    rows set aside at the quarantine key (a report beside each), and the upload as received at
    ``{model}/accepted/{sha16}/original/{file}``; ``sha16`` is the upload's.
    ``{model}/labels/...``              ground truth keyed by request_id
    ``{model}/batch/...``               batch scoring: a drop here is scored (``batch/v{N}/...``: by
                                         version N, else the serving champion)
    ``{model}/scored/{path}/part-{i}.{ext}``  its results, one part per chunk, in the input's format
Artifact bucket
    ``{model}/spec.yaml``                       the model's current spec
    ``{model}/models/sha256-{hex}.onnx``        model artifacts, content-addressed
    ``{model}/contracts/sha256-{hex}.json``     serving contracts, content-addressed
    ``{model}/versions/{version}/{file}``       a version's companions (evidence.json, report.html,
                                                spec.yaml, profile.json, contract.json, holdout.parquet)
    ``staging/{model}/{execution}/{file}``      a candidate before it is registered (candidate.onnx,
                                                holdout.parquet, spec.yaml, profile.json, gates.json,
                                                data.json: the data objects it trained on);
                                                one top-level prefix, so a lifecycle rule expires
                                                what Register did not copy out (after 30 days)
    ``staging/{model}/batch-{id}/items.json``    a batch job's chunks, read by the Map's ItemReader
    ``staging/batch-results/{map run}/...``      the batch Map's results (its ResultWriter)
Capture bucket
    ``{model}/capture/YYYY/MM/DD/HH/{uuid}.jsonl``  request records, by the UTC hour of the first
    ``{model}/monitor/YYYY/MM/DD/HH/{run}.json``    live-monitor reports, by the hour of the window's end
    ``{model}/labels-joined/YYYY/MM/DD/HH/{label-object}.jsonl``  labels joined with the served records
                                                  they label, by the hour of the *request*
    ``{model}/labels-reports/{label-object}.json``  the outcome of one label object's join
Data bucket, labels
    ``{model}/quarantine/labels/...``   a malformed label file, its ``.report.json`` beside it

Standard library only: the predict path (capture) and the CDK app import it.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Areas of the data bucket.
INCOMING = "incoming"
ACCEPTED = "accepted"
QUARANTINE = "quarantine"
ORIGINAL = "original"  # a split drop's upload, as received (under its accepted folder)
LABELS = "labels"
BATCH = "batch"
SCORED = "scored"
BATCH_ITEMS = "items.json"
BATCH_RESULTS = "results"
# Areas of the artifact bucket.
MODELS = "models"
CONTRACTS = "contracts"
VERSIONS = "versions"
STAGING = "staging"
# The batch Map's ResultWriter prefix (artifact bucket): one folder per map run below it.
BATCH_RESULTS_PREFIX = f"{STAGING}/batch-{BATCH_RESULTS}"
SPEC_FILE = "spec.yaml"
# The capture bucket.
CAPTURE = "capture"
MONITOR = "monitor"
LABELS_JOINED = "labels-joined"
LABELS_REPORTS = "labels-reports"
CAPTURE_HOUR_FORMAT = "%Y/%m/%d/%H"
CAPTURE_EXTENSION = ".jsonl"

# A version's companions ({model}/versions/{version}/...) and a staged candidate's files.
EVIDENCE = "evidence.json"
REPORT = "report.html"
PROFILE = "profile.json"
CONTRACT = "contract.json"
CANDIDATE = "candidate.onnx"
HOLDOUT = "holdout.parquet"
DATA_MANIFEST = "data.json"  # staged by Train: the data objects it read (the lineage), never in the state
GATES = "gates.json"
# Train on Fargate or SageMaker (conveyor.compute): the stage's input, staged by "Choose compute" for the
# container (its key is the task's override / the job's hyperparameter), and the container's result,
# read back into the state by "Read training result". Both under staging_key(model, execution, ...).
TRAINING_INPUT = "training-input.json"
TRAINING_RESULT = "training-result.json"

VALIDATION_REPORT_SUFFIX = ".report.json"
DRIFT_REPORT_SUFFIX = ".drift.json"


# --- data bucket ----------------------------------------------------------------------------------


def incoming_prefix(model: str) -> str:
    return f"{model}/{INCOMING}/"


def incoming_key(model: str, filename: str) -> str:
    """Where a drop lands (``conveyor drop``, or any S3 client)."""
    return f"{incoming_prefix(model)}{filename}"


def model_of_incoming(key: str) -> str | None:
    """``{model}/incoming/...`` -> model, or None for any other key (an area, not a drop)."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[1] == INCOMING and parts[0] and parts[-1]:
        return parts[0]
    return None


def model_of_batch(key: str) -> str | None:
    """``{model}/batch/...`` -> model, or None for any other key."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[1] == BATCH and parts[0] and parts[-1]:
        return parts[0]
    return None


def batch_version(key: str) -> int | None:
    """The version a batch key names (``{model}/batch/v3/...`` -> 3), or None (the champion)."""
    parts = key.split("/")
    if len(parts) >= 4 and parts[2][:1] == "v" and parts[2][1:].isdigit():
        return int(parts[2][1:])
    return None


def scored_part_key(batch_key: str, part: int) -> str:
    """Where chunk ``part`` of ``{model}/batch/{path}.{ext}`` is written:
    ``{model}/scored/{path}/part-{part:05d}.{ext}`` (the input's format)."""
    model, _, rest = batch_key.split("/", 2)
    stem, dot, ext = rest.rpartition(".")
    folder = stem if dot and "/" not in ext else rest
    suffix = f".{ext}" if dot and "/" not in ext else ""
    return f"{model}/{SCORED}/{folder}/part-{part:05d}{suffix}"


def batch_staging_key(model: str, batch_id: str, name: str) -> str:
    """A batch job's own files in the artifact bucket: ``staging/{model}/batch-{id}/{name}`` (expired
    with the other staged files)."""
    return f"{STAGING_PREFIX}{model}/batch-{batch_id}/{name}"


def model_of(key: str) -> str:
    """The model a key of any bucket belongs to: its first path segment."""
    return key.split("/", 1)[0]


def stored_data_key(model: str, *, accepted: bool, sha256: str, filename: str) -> str:
    """Where validation moves a drop: accepted/ or quarantine/, under the first 16 hex digits of its sha256."""
    return f"{model}/{ACCEPTED if accepted else QUARANTINE}/{sha256[:16]}/{filename}"


def original_data_key(model: str, *, sha256: str, filename: str) -> str:
    """Where a split drop's upload is kept as received, beside its accepted part."""
    return f"{model}/{ACCEPTED}/{sha256[:16]}/{ORIGINAL}/{filename}"


def validation_report_key(data_key: str) -> str:
    """The validation report, beside the data it judged."""
    return f"{data_key}{VALIDATION_REPORT_SUFFIX}"


def drift_report_key(data_key: str) -> str:
    """The drift report of an accepted object, beside it."""
    return f"{data_key}{DRIFT_REPORT_SUFFIX}"


def labels_prefix(model: str) -> str:
    return f"{model}/{LABELS}/"


def label_key(model: str, filename: str, sha256: str) -> str:
    """``{model}/labels/{sha12}-{filename}``: an uploaded label file, named by its content."""
    return f"{labels_prefix(model)}{sha256[:12]}-{filename}"


def capture_model_prefix(model: str) -> str:
    """``{model}/capture/``: every hour of a model's capture."""
    return f"{model}/{CAPTURE}/"


def batch_prefix(model: str) -> str:
    return f"{model}/{BATCH}/"


# --- artifact bucket ------------------------------------------------------------------------------


def spec_key(model: str) -> str:
    """The model's current spec, uploaded by ``conveyor drop --spec`` or any S3 client."""
    return f"{model}/{SPEC_FILE}"


def artifact_key(model: str, sha256: str) -> str:
    """Content-addressed key: the same bytes always land at the same key."""
    return f"{model}/{MODELS}/sha256-{sha256}.onnx"


def contract_key(model: str, sha256: str) -> str:
    """Content-addressed, like the model artifact: the same contract always lands at the same key."""
    return f"{model}/{CONTRACTS}/sha256-{sha256}.json"


def version_key(model: str, version: int, name: str) -> str:
    """Where a version's companions live: evidence.json, report.html, spec.yaml, profile.json, contract.json."""
    return f"{model}/{VERSIONS}/{version}/{name}"


STAGING_PREFIX = f"{STAGING}/"


def staging_key(model: str, execution: str, name: str) -> str:
    """A file of the candidate that execution ``execution`` trains, until Register copies what it keeps
    (under the version); the artifact bucket expires the rest."""
    return f"{STAGING_PREFIX}{model}/{execution}/{name}"


def beside(key: str, name: str) -> str:
    """``name`` in the folder of ``key`` (the gates' details beside the staged candidate)."""
    return f"{key.rsplit('/', 1)[0]}/{name}"


# --- capture bucket -------------------------------------------------------------------------------


def capture_prefix(model: str, timestamp: float) -> str:
    """``{model}/capture/YYYY/MM/DD/HH/``: the UTC hour of ``timestamp`` (seconds since the epoch)."""
    hour = datetime.fromtimestamp(timestamp, tz=UTC).strftime(CAPTURE_HOUR_FORMAT)
    return f"{model}/{CAPTURE}/{hour}/"


def capture_key(model: str, timestamp: float) -> str:
    """``{model}/capture/YYYY/MM/DD/HH/{uuid}.jsonl``: the UTC hour of the file's first record."""
    import uuid  # here, not at import: predict imports this module, and uuid imports platform

    return f"{capture_prefix(model, timestamp)}{uuid.uuid4()}{CAPTURE_EXTENSION}"


# --- monitoring (capture bucket; labels in the data bucket) ---------------------------------------


def hour_prefixes(model: str, area: str, start: float, end: float) -> list[str]:
    """``{model}/{area}/YYYY/MM/DD/HH/`` for every UTC hour that overlaps [start, end]."""
    hour, last = int(start // 3600), int(end // 3600)
    return [
        f"{model}/{area}/{datetime.fromtimestamp(h * 3600, tz=UTC).strftime(CAPTURE_HOUR_FORMAT)}/"
        for h in range(hour, last + 1)
    ]


def monitor_report_key(model: str, end: float, run: str) -> str:
    """One live-monitor run's report, under the UTC hour of its window's end."""
    hour = datetime.fromtimestamp(end, tz=UTC).strftime(CAPTURE_HOUR_FORMAT)
    return f"{model}/{MONITOR}/{hour}/{run}.json"


def labels_joined_key(model: str, request_timestamp: float, label_object: str) -> str:
    """One file per (label object version, request hour): a label object delivered twice rewrites the same keys."""
    hour = datetime.fromtimestamp(request_timestamp, tz=UTC).strftime(CAPTURE_HOUR_FORMAT)
    return f"{model}/{LABELS_JOINED}/{hour}/{label_object}{CAPTURE_EXTENSION}"


def labels_report_key(model: str, label_object: str) -> str:
    """The outcome of one label object's join (``conveyor labels`` waits for it)."""
    return f"{model}/{LABELS_REPORTS}/{label_object}.json"


def label_object_id(bucket: str, key: str, version: str | None) -> str:
    """A stable name for one version of one label object."""
    import hashlib

    return hashlib.sha256(f"{bucket}\n{key}\n{version or ''}".encode()).hexdigest()[:32]


def model_of_label_key(key: str) -> str | None:
    """``{model}/labels/...`` -> model, or None for any other key."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[1] == LABELS and parts[0] and parts[-1]:
        return parts[0]
    return None


def label_quarantine_key(key: str) -> str:
    """``{model}/labels/x.csv`` -> ``{model}/quarantine/labels/x.csv``."""
    model, rest = key.split("/", 1)
    return f"{model}/{QUARANTINE}/{rest}"
