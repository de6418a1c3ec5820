"""Up to date means the outputs are still stored: a deleted blob makes its task run again."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import boto3

if TYPE_CHECKING:
    from conftest import Project


def delete_blob(store_url: str, sha256_hex: str) -> None:
    """Delete one blob behind the store's back (as a lifecycle rule or a person might)."""
    key = f"blobs/sha256/{sha256_hex[:2]}/{sha256_hex}"
    parsed = urlparse(store_url)
    if parsed.scheme == "s3":
        prefix = parsed.path.strip("/")
        client = boto3.session.Session().client("s3")
        client.delete_object(Bucket=parsed.netloc, Key=f"{prefix}/{key}")
    else:
        (Path(store_url) / key).unlink()


def test_missing_output_blob_makes_the_task_run_again(project: Project) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    model = project.store().resolve("model", "demo", namespace="dev")
    delete_blob(project.store_url, model.files[0].sha256)

    listing = project.cli("list", "--dev")
    assert listing.exit_code == 0, listing.output
    assert "outputs gone from the store" in listing.stdout

    result = project.cli("run", "--dev")
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[0].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "skipped" in rows["ingest"]
    assert " ran " in rows["train"]
    # train made byte-identical output, so evaluate's inputs are unchanged: it is reused.
    assert "skipped" in rows["evaluate"]
    # Identical bytes are not a new version: the rerun put the blob back under dev1.
    assert project.labels("model") == ["dev1"]
    assert project.store().has_content(project.store().resolve("model", "demo", namespace="dev"))
