"""The deployment's zip functions import only what their layers ship (numpy, onnxruntime, Powertools);
the plan stage, which parses the spec with pydantic and yaml, runs in the training image."""

import pytest

from tests.component.test_predict_imports import FORBIDDEN, _imports


@pytest.mark.parametrize("name", ["approval", "trial", "bake", "rollback", "deploy", "board_widget"])
def test_deployment_zip_functions_import_only_what_their_layers_ship(name):
    loaded = _imports(name)
    assert not loaded & set(FORBIDDEN), f"{name} imports {sorted(loaded & set(FORBIDDEN))}"


def test_the_plan_function_runs_in_the_training_image():
    from infra.constants import IMAGE_FUNCTIONS, ZIP_FUNCTIONS

    assert "plan" in IMAGE_FUNCTIONS and "plan" not in ZIP_FUNCTIONS
