"""Big synthetic drops for the scale benchmark: the data-gate benchmark's 20 columns, written in
slices of 500,000 rows (each its own seed) until the file reaches the size asked for."""

from __future__ import annotations

from pathlib import Path

from data_gate_data import SPEC_YAML, make_frame

SLICE_ROWS = 500_000


def big_csv(path: Path, target_bytes: int) -> tuple[Path, int]:
    """A CSV of at least ``target_bytes`` (reused when already there); its spec (max_file_mb raised)
    beside it. Returns the spec's path and the file's rows."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    path.parent.mkdir(parents=True, exist_ok=True)
    spec = path.with_suffix(".yaml")
    spec.write_text(SPEC_YAML + "validation: {max_file_mb: 100000}\n")
    rows_file = path.with_suffix(".rows")
    if path.exists() and path.stat().st_size >= target_bytes and rows_file.exists():
        return spec, int(rows_file.read_text())
    rows, seed = 0, 100
    with path.open("wb") as handle:
        writer = None
        while handle.tell() < target_bytes:
            table = pa.Table.from_pandas(make_frame(SLICE_ROWS, shifted=False, seed=seed), preserve_index=False)
            if writer is None:
                writer = pcsv.CSVWriter(handle, table.schema)
            writer.write_table(table)
            rows += table.num_rows
            seed += 1
        if writer is not None:
            writer.close()
    rows_file.write_text(str(rows))
    return spec, rows
