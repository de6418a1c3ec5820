"""Which W&B mode a run uses, where its files go, and the upload step of sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from aeromancy.errors import InfrastructureError
from aeromancy.tracking.sync import upload_offline_runs
from aeromancy.tracking.wandb_setup import container_wandb_mount, resolve_mode, runs_dir

KEY = "k" * 40


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "offline"),
        ({"WANDB_API_KEY": KEY}, "online"),
        ({"WANDB_API_KEY": KEY, "WANDB_MODE": "offline"}, "offline"),
        ({"WANDB_API_KEY": KEY, "WANDB_MODE": "dryrun"}, "offline"),
        ({"WANDB_API_KEY": KEY, "WANDB_MODE": "disabled"}, "disabled"),
        ({"WANDB_MODE": "online"}, "offline"),  # no credentials: never prompt for a login
    ],
)
def test_resolve_mode(env: dict[str, str], expected: str, tmp_path: Path) -> None:
    assert resolve_mode({"NETRC": str(tmp_path / "none"), **env}) == expected


def test_a_wandb_login_in_netrc_means_online(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {KEY}\n")
    netrc.chmod(0o600)
    assert resolve_mode({"NETRC": str(netrc)}) == "online"
    other_server = {"NETRC": str(netrc), "WANDB_BASE_URL": "https://wandb.example.com"}
    assert resolve_mode(other_server) == "offline"


def test_runs_dir_is_in_the_project_root_unless_wandb_dir_is_set(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    assert runs_dir(root / "src", {}) == root / "wandb"
    assert runs_dir(root / "src", {"WANDB_DIR": str(tmp_path / "w")}) == tmp_path / "w" / "wandb"


def test_a_failed_upload_is_an_infrastructure_error(tmp_path: Path) -> None:
    # The real `wandb sync` CLI, refusing a run directory that does not exist.
    with pytest.raises(InfrastructureError, match="wandb sync failed") as caught:
        upload_offline_runs([tmp_path / "offline-run-gone"])
    assert caught.value.exit_code == 3


def test_container_mount_targets_the_host_runs_dir(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    mount = container_wandb_mount(root, {})
    assert mount.host == root / "wandb"
    assert (mount.host / ".gitignore").read_text().splitlines()[-1] == "*"
    # W&B writes into <WANDB_DIR>/wandb: inside the container that is the mounted path.
    assert mount.container == mount.environ["WANDB_DIR"] + "/wandb"
