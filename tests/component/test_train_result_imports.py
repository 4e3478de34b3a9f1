""" "Read training result" is a zip function: it imports only what the zip layers ship (no pandas, no
pydantic); "Choose compute" parses the spec, so it runs in the training image."""

from tests.component.test_predict_imports import FORBIDDEN, _imports


def test_read_training_result_imports_only_what_its_layers_ship() -> None:
    loaded = _imports("train_result")
    assert not loaded & set(FORBIDDEN), f"train_result imports {sorted(loaded & set(FORBIDDEN))}"


def test_choose_compute_runs_in_the_training_image() -> None:
    from infra.constants import IMAGE_FUNCTIONS, ZIP_FUNCTIONS

    assert "train_plan" in IMAGE_FUNCTIONS and "train_result" in ZIP_FUNCTIONS
