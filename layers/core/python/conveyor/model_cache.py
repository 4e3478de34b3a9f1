"""Versions ready to score, per prediction container: ONNX sessions and serving contracts, each
verified by its sha256, and the breaker settings each version's contract carries.

A version that cannot be loaded (its artifact or contract fails verification, its ONNX does not
load, the object store fails) is remembered as failed for ``failure_seconds``: requests in that time
fail at once instead of downloading and checking it again, and the champion answers them (see
``conveyor.serving``). Standard library, numpy and onnxruntime only (the predict path).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.breaker import BreakerSettings
from conveyor.contract import ServingContract
from conveyor.errors import ArtifactError
from conveyor.routing import load_verified, sha256_hex

if TYPE_CHECKING:
    from conveyor.ports import ObjectReader
    from conveyor.scoring import OnnxModel

FAILURE_SECONDS = 5.0


@dataclass(frozen=True)
class LoadedVersion:
    """One servable version: its ONNX session and its serving contract."""

    ref: dict[str, Any]
    onnx: OnnxModel
    contract: ServingContract

    @property
    def number(self) -> int:
        return int(self.ref["version"])


class ModelCache:
    """ONNX sessions per artifact sha256 (each downloaded once to local disk and verified) and
    serving contracts per sha256 (verified, kept in memory); load failures kept ``failure_seconds``."""

    def __init__(
        self,
        store: ObjectReader,
        bucket: str,
        directory: str | None = None,
        *,
        failure_seconds: float = FAILURE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._dir = Path(directory or os.environ.get("CONVEYOR_MODEL_DIR", "/tmp/conveyor-models"))  # noqa: S108
        self._models: dict[str, OnnxModel] = {}
        self._contracts: dict[tuple[str, str], ServingContract] = {}
        self._documents: dict[str, ServingContract] = {}
        self._failures: dict[tuple[str, str], tuple[float, Exception]] = {}
        self._failure_seconds = failure_seconds
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, artifact_key: str, sha256: str) -> OnnxModel:
        model = self._models.get(sha256)
        if model is not None:
            return model
        with self._lock:
            if sha256 in self._models:
                return self._models[sha256]
            path = self._dir / f"{sha256}.onnx"
            data = path.read_bytes() if path.exists() else b""
            if sha256_hex(data) != sha256:
                data = load_verified(self._store, self._bucket, artifact_key, sha256)
                self._dir.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            from conveyor.scoring import OnnxModel  # onnxruntime: when first needed (see conveyor.serving)

            model = OnnxModel(data)
            self._models[sha256] = model
            return model

    def _document(self, ref: dict[str, Any]) -> ServingContract:
        """The contract a version was registered with, verified by its sha256 (not yet checked against the ONNX)."""
        contract_sha = str(ref["contract_sha256"])
        contract = self._documents.get(contract_sha)
        if contract is None:
            data = load_verified(self._store, self._bucket, str(ref["contract_key"]), contract_sha)
            try:
                contract = ServingContract.from_json(data)
            except (ValueError, KeyError, TypeError) as error:
                raise ArtifactError(f"unreadable serving contract {ref['contract_key']}: {error}") from None
            self._documents[contract_sha] = contract
        return contract

    def contract(self, model_name: str, ref: dict[str, Any], onnx: OnnxModel) -> ServingContract:
        """The version's serving contract, verified by its sha256; derived from the ONNX inputs for a
        version registered without one."""
        contract_sha = str(ref.get("contract_sha256") or "")
        cache_key = (contract_sha or "onnx", str(ref["sha256"]))
        contract = self._contracts.get(cache_key)
        if contract is not None:
            return contract
        if contract_sha:
            contract = self._document(ref)
            if set(contract.features) != set(onnx.features):
                raise ArtifactError(
                    f"serving contract {ref['contract_key']} does not name the model's inputs",
                    details={"contract": sorted(contract.features), "model": sorted(onnx.features)},
                )
        else:
            contract = ServingContract.from_model_inputs(model_name, onnx.task, onnx.feature_types)
        self._contracts[cache_key] = contract
        return contract

    def recent_failure(self, ref: dict[str, Any]) -> Exception | None:
        """The version's load failure, while it is remembered (``failure_seconds``)."""
        key = (str(ref["sha256"]), str(ref.get("contract_sha256") or ""))
        failed = self._failures.get(key)
        if failed is None:
            return None
        if self._clock() - failed[0] < self._failure_seconds:
            return failed[1]
        self._failures.pop(key, None)
        return None

    def load(self, model_name: str, ref: dict[str, Any]) -> LoadedVersion:
        """The version ready to score; raises at once (the same error) while a recent failure is remembered."""
        failed = self.recent_failure(ref)
        if failed is not None:
            raise failed.with_traceback(None)
        key = (str(ref["sha256"]), str(ref.get("contract_sha256") or ""))
        try:
            fetching = self._fetch_document(ref) if str(ref["sha256"]) not in self._models else None
            onnx = self.get(str(ref["artifact_key"]), str(ref["sha256"]))
            if fetching is not None:
                fetching.join()
            return LoadedVersion(ref=ref, onnx=onnx, contract=self.contract(model_name, ref, onnx))
        except Exception as error:
            self._failures[key] = (self._clock(), error)
            raise

    def _fetch_document(self, ref: dict[str, Any]) -> threading.Thread | None:
        """Read the version's contract in a thread while its artifact downloads and loads (two reads
        in one wait at a cold start); its failure is left to ``contract``, which reads it again."""
        contract_sha = str(ref.get("contract_sha256") or "")
        if not contract_sha or contract_sha in self._documents:
            return None

        def fetch() -> None:
            with contextlib.suppress(Exception):  # contract() reads it again and raises the version's error
                self._document(ref)

        thread = threading.Thread(target=fetch, name="contract-read", daemon=True)
        thread.start()
        return thread

    def breaker_settings(self, ref: dict[str, Any]) -> BreakerSettings:
        """The version's ``serving.breaker`` from its contract, read even when its ONNX is broken;
        the defaults for a version registered without a contract, or whose contract cannot be read."""
        if not ref.get("contract_sha256"):
            return BreakerSettings()
        try:
            return self._document(ref).breaker
        except Exception:  # its failures are the version's own; the breaker then runs on the defaults
            return BreakerSettings()
