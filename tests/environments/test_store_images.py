"""Environment images in the store: saved as blobs, loaded back with the identical id.

Real Docker engine, real stores (a local directory and the loopback S3 server).
The images are small ones made for each test ``FROM scratch`` (see conftest.py).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import docker
import pytest
from rich.console import Console

from aeromancy.environments.layout import image_hex, image_key
from aeromancy.environments.load import load_image, read_stored_image
from aeromancy.environments.save import save_image
from aeromancy.errors import InfrastructureError, NotFound
from aeromancy.store import Store, open_store

from .conftest import ImageFactory, image_exists, remove_image

pytestmark = pytest.mark.docker


def quiet_console() -> tuple[Console, io.StringIO]:
    """Return a console that is not a terminal, and what it printed."""
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200), out


def diff_ids(image_id: str) -> list[str]:
    layers = docker.from_env().images.get(image_id).attrs["RootFS"]["Layers"]
    return [image_hex(layer) for layer in layers]


def test_saved_image_loads_back_with_the_identical_id(
    store_url: str, make_image: ImageFactory, tmp_path: Path
) -> None:
    store = open_store(store_url)
    image_id = make_image(3, 2)
    console, printed = quiet_console()

    report = save_image(store, image_id, ("aeromancy-test/env:one",), console)

    assert report.saved
    assert (report.layers, report.new_layers) == (2, 2)
    assert report.uploaded_bytes >= 5_000_000
    assert store.has_blobs([image_hex(image_id), *diff_ids(image_id)])
    assert store.backend.exists(image_key(image_id))
    lines = printed.getvalue().splitlines()
    assert lines[0].startswith(f"saving environment image {image_hex(image_id)[:12]} into ")
    assert "done in" in lines[1]
    assert "2 of 2 layers new" in lines[1]

    remove_image(image_id)
    assert not image_exists(image_id)
    fresh = open_store(store_url, cache_dir=tmp_path / "another-machine-cache")
    loaded = load_image(fresh, image_id, console)

    assert loaded == image_id
    assert docker.from_env().images.get(image_id).tags == ["aeromancy-test/env:one"]
    assert "2 of 2 layers sent" in printed.getvalue()


def test_second_image_uploads_only_its_new_top_layer(
    store_url: str, make_image: ImageFactory
) -> None:
    store = open_store(store_url)
    console, _ = quiet_console()
    first = make_image(4, 3)
    second = make_image(1, parent=first)
    save_image(store, first, (), console)

    report = save_image(store, second, (), console)

    top = diff_ids(second)[-1]
    assert diff_ids(second)[:-1] == diff_ids(first)
    assert (report.layers, report.new_layers) == (3, 1)
    stored = read_stored_image(store, second)
    assert stored is not None
    (top_size,) = [layer.size for layer in stored.layers if layer.sha256 == top]
    assert report.uploaded_bytes == top_size + stored.config.size
    assert report.read_bytes > 7_000_000  # docker save streams every layer ...
    assert top_size < 1_100_000  # ... but only the new one, about 1 MB, was sent


def test_loading_sends_only_the_layers_whose_chain_the_engine_lacks(
    store_url: str, make_image: ImageFactory
) -> None:
    store = open_store(store_url)
    console, printed = quiet_console()
    first = make_image(2)
    second = make_image(1, parent=first)
    docker.from_env().images.get(first).tag("aeromancy-test/env", "held")  # rmi would prune it
    save_image(store, second, (), console)
    remove_image(second)

    assert load_image(store, second, console) == second
    assert "1 of 2 layers sent" in printed.getvalue()


def test_an_image_already_stored_is_not_read_again(
    local_store_url: str, make_image: ImageFactory
) -> None:
    store = open_store(local_store_url)
    image_id = make_image(1)
    console, _ = quiet_console()
    assert save_image(store, image_id, (), console).saved

    again = save_image(store, image_id, (), console)

    assert not again.saved
    assert again.read_bytes == 0


def test_a_corrupt_layer_blob_fails_the_load_and_loads_nothing(
    local_store_url: str, make_image: ImageFactory
) -> None:
    store = open_store(local_store_url)
    image_id = make_image(1)
    console, _ = quiet_console()
    save_image(store, image_id, (), console)
    blob = Path(local_store_url) / "blobs" / "sha256"
    (layer,) = diff_ids(image_id)
    path = blob / layer[:2] / layer
    path.chmod(0o644)
    path.write_bytes(b"not the layer")
    remove_image(image_id)

    with pytest.raises(InfrastructureError, match="does not match its digest"):
        load_image(store, image_id, console)
    assert not image_exists(image_id)


def test_a_record_describing_another_image_is_refused(
    local_store_url: str, make_image: ImageFactory
) -> None:
    store = open_store(local_store_url)
    first, second = make_image(1), make_image(1)
    console, _ = quiet_console()
    save_image(store, first, (), console)
    record = Path(local_store_url) / image_key(first)
    moved = Path(local_store_url) / image_key(second)
    moved.write_bytes(record.read_bytes())

    with pytest.raises(InfrastructureError, match=f"describes sha256:{image_hex(first)}"):
        read_stored_image(store, second)


def test_loading_an_image_the_store_lacks_is_not_found(local_store_url: str) -> None:
    store: Store = open_store(local_store_url)
    missing = "sha256:" + "0" * 64
    with pytest.raises(NotFound, match=f"image {missing} is not in the store"):
        load_image(store, missing, quiet_console()[0])


def test_record_lists_layers_in_rootfs_order(
    local_store_url: str, make_image: ImageFactory
) -> None:
    store = open_store(local_store_url)
    image_id = make_image(1, 1, 1)
    save_image(store, image_id, ("aeromancy-test/env:order",), quiet_console()[0])
    document = json.loads((Path(local_store_url) / image_key(image_id)).read_text())
    assert [layer["sha256"] for layer in document["layers"]] == diff_ids(image_id)
    assert document["config"]["sha256"] == image_hex(image_id)
    assert document["tags"] == ["aeromancy-test/env:order"]
    tag_record = Path(local_store_url) / "images/tags/aeromancy-test/env/order.json"
    assert json.loads(tag_record.read_text())["id"] == image_id
