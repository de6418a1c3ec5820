"""S3 servers that differ from AWS: conditional writes, lost answers, cut bodies, checksums,
silence.

Every case runs the real store against moto's S3 server on loopback, through the
``s3_proxy`` fixture (tests/store/conftest.py) that makes the server look like one
that ignores ``If-None-Match`` (the header is stripped), refuses it (501
NotImplemented), loses an answer after the write landed, cuts a body midway, or
never answers. Nothing in boto3 or botocore is patched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from aeromancy.cli import main
from aeromancy.errors import InfrastructureError, StoreUnavailable, UsageError
from aeromancy.store import open_store
from aeromancy.store.s3 import S3Backend
from aeromancy.store.s3_client import make_client
from aeromancy.store.store import Store

pytestmark = pytest.mark.s3

NOT_IMPLEMENTED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code>'
    b"<Message>A header you provided implies functionality that is not implemented"
    b"</Message></Error>"
)


def conditional(request: Any) -> bool:
    return request.method == "PUT" and request.header("If-None-Match") is not None


def ignores_if_none_match(request: Any) -> object:
    return ("strip", {"If-None-Match"})


def refuses_if_none_match(request: Any) -> object:
    return ("answer", 501, NOT_IMPLEMENTED) if conditional(request) else "forward"


def through(monkeypatch: pytest.MonkeyPatch, relay: Any) -> str:
    """Point the store at ``relay``; return moto's own endpoint."""
    moto = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", relay.url)
    return moto


def data_dir(tmp_path: Path, text: str = "payload") -> Path:
    source = tmp_path / "data"
    source.mkdir(exist_ok=True)
    (source / "f.txt").write_text(text)
    return source


def keys(store: Store, prefix: str) -> list[str]:
    return store.backend.list_prefix(prefix)


# -- If-None-Match: honoured, ignored, refused ----------------------------------------


def test_a_server_that_honours_if_none_match_is_probed_once_and_used(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    relay = s3_proxy(lambda request: "forward")
    through(monkeypatch, relay)
    store = open_store(s3_store_url)

    store.publish("proj", "data", data_dir(tmp_path))
    store.publish("proj", "data", data_dir(tmp_path, "second"))
    open_store(s3_store_url).publish("proj", "data", data_dir(tmp_path, "third"))

    probes = [r for r in relay.seen if "conditional-write-probe" in r.path]
    assert [r.method for r in probes] == ["PUT", "PUT", "DELETE"]  # once per endpoint
    assert [v.label for v in store.list_versions("proj", "data")] == ["v1", "v2", "v3"]
    assert keys(store, "tmp/") == []


BEHAVIOURS = {
    "ignores": (ignores_if_none_match, "ignores If-None-Match: \\*"),
    "refuses": (refuses_if_none_match, "does not implement conditional PUTs"),
}


@pytest.mark.parametrize("kind", sorted(BEHAVIOURS))
def test_a_server_without_conditional_writes_is_refused_before_any_write(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    server, behaviour = BEHAVIOURS[kind]
    relay = s3_proxy(server)
    moto = through(monkeypatch, relay)

    with pytest.raises(InfrastructureError, match=rf"S3 server at {relay.url} {behaviour}") as info:
        open_store(s3_store_url).publish("proj", "data", data_dir(tmp_path))

    assert info.value.exit_code == 3
    assert "AEROMANCY_S3_SINGLE_WRITER=1" in str(info.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    assert keys(open_store(s3_store_url), "") == []  # no blob, no manifest, no probe


@pytest.mark.parametrize("server", [ignores_if_none_match, refuses_if_none_match])
def test_single_writer_mode_publishes_on_such_a_server(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: Any
) -> None:
    through(monkeypatch, s3_proxy(server))
    monkeypatch.setenv("AEROMANCY_S3_SINGLE_WRITER", "1")
    store = open_store(s3_store_url)

    store.publish("proj", "data", data_dir(tmp_path))
    store.publish("proj", "data", data_dir(tmp_path, "again"))
    store.put_run_record("proj", "run-1", {"task": "t"})

    assert [v.label for v in store.list_versions("proj", "data")] == ["v1", "v2"]
    with pytest.raises(UsageError, match="already exists"):
        store.put_run_record("proj", "run-1", {"task": "other"})


def test_push_to_a_server_ignoring_if_none_match_exits_3_on_one_line(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    through(monkeypatch, s3_proxy(ignores_if_none_match))
    data_dir(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.aeromancy]\nproject = "demo"\n')

    result = CliRunner().invoke(main, ["--store", s3_store_url, "push", "data", "data"])

    assert result.exit_code == 3, result.output
    assert "ignores If-None-Match" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- lost answers, cut bodies ------------------------------------------------------


class LoseFirstReply:
    """Forward every request; of the first conditional PUT under ``prefix``, lose the answer."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.lost: list[str] = []

    def __call__(self, request: Any) -> object:
        if conditional(request) and self.prefix in request.path and not self.lost:
            self.lost.append(request.path)
            return "lose_reply"
        return "forward"


def test_a_manifest_put_whose_answer_was_lost_makes_one_version(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rule = LoseFirstReply("/artifacts/proj/data/")
    through(monkeypatch, s3_proxy(rule))
    store = open_store(s3_store_url)

    version = store.publish("proj", "data", data_dir(tmp_path))

    assert rule.lost == [f"/{s3_store_url.split('/')[2]}/store/artifacts/proj/data/v1.json"]
    assert version.label == "v1"
    assert [v.label for v in store.list_versions("proj", "data")] == ["v1"]


def test_a_run_record_put_whose_answer_was_lost_succeeds(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = LoseFirstReply("/runs/proj/")
    through(monkeypatch, s3_proxy(rule))
    store = open_store(s3_store_url)

    store.put_run_record("proj", "run-1", {"task": "train", "status": "succeeded"})

    assert len(rule.lost) == 1
    assert store.get_run_record("proj", "run-1") == {"task": "train", "status": "succeeded"}


def test_a_rivals_manifest_at_the_number_is_not_taken_for_ours(
    s3_store_url: str, tmp_path: Path
) -> None:
    # The same bytes mean the same write only thanks to the nonce: two publishes of the
    # same files (other metadata, so that the second is not the first reused) still make
    # two versions.
    store = open_store(s3_store_url)
    first = store.publish("proj", "data", data_dir(tmp_path))
    second = store.publish("proj", "data", data_dir(tmp_path), metadata={"attempt": 2})

    assert (first.label, second.label) == ("v1", "v2")
    assert first.digest == second.digest


def test_a_manifest_read_cut_midway_is_read_again(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    open_store(s3_store_url).publish("proj", "data", data_dir(tmp_path))
    cut: list[str] = []

    def cut_first_manifest_read(request: Any) -> object:
        if request.method == "GET" and request.path.endswith("v1.json") and not cut:
            cut.append(request.path)
            return "cut_mid_body"
        return "forward"

    through(monkeypatch, s3_proxy(cut_first_manifest_read))
    store = open_store(s3_store_url)

    version = store.resolve("data", "proj")

    assert len(cut) == 1
    assert version.label == "v1"
    assert (store.materialize(version, tmp_path / "out") / "f.txt").read_text() == "payload"


# -- checksums: boto3's default on AWS, when_required elsewhere ------------------------


def test_off_aws_the_client_sends_and_checks_checksums_only_when_required(
    s3_store_url: str,
) -> None:
    config = make_client().meta.config

    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"


@pytest.mark.parametrize("checksums", ["when_supported", "when_required"])
def test_both_checksum_settings_work_against_moto(
    s3_store_url: str,
    s3_proxy: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    checksums: str,
) -> None:
    relay = s3_proxy(lambda request: "forward")
    through(monkeypatch, relay)
    bucket = s3_store_url.split("/")[2]
    backend = S3Backend(bucket, "store", make_client(checksums))  # type: ignore[arg-type]
    store = Store(backend, tmp_path / "cache", 4)

    version = store.publish("proj", "data", data_dir(tmp_path))
    out = store.materialize(store.resolve("data", "proj"), tmp_path / "out")

    assert (out / "f.txt").read_text() == "payload"
    assert version.label == "v1"
    manifest_puts = [r for r in relay.seen if r.method == "PUT" and r.path.endswith("v1.json")]
    crc = [r.header("x-amz-sdk-checksum-algorithm") for r in manifest_puts]
    assert crc == (["CRC32"] if checksums == "when_supported" else [None])


# -- bounded failures ---------------------------------------------------------------


def cli(store_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", store_url, *args])


@pytest.mark.parametrize("how", ["stall", "stall_mid_body"])
def test_an_unresponsive_server_fails_within_the_timeout_naming_it(
    s3_store_url: str,
    s3_proxy: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    how: str,
) -> None:
    open_store(s3_store_url).publish("proj", "data", data_dir(tmp_path))
    (tmp_path / "pyproject.toml").write_text('[tool.aeromancy]\nproject = "proj"\n')
    monkeypatch.chdir(tmp_path)
    relay = s3_proxy(lambda request: how if request.method == "GET" else "forward")
    through(monkeypatch, relay)
    monkeypatch.setenv("AEROMANCY_S3_TIMEOUT", "0.5")
    monkeypatch.setenv("AEROMANCY_S3_MAX_ATTEMPTS", "2")

    result = cli(s3_store_url, "show", "data:v1")

    assert result.exit_code == 3, result.output
    assert f"{relay.url} did not answer within 0.5 s (2 attempts)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_stalled_push_fails_within_the_timeout(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    relay = s3_proxy(lambda request: "stall")
    through(monkeypatch, relay)
    monkeypatch.setenv("AEROMANCY_S3_TIMEOUT", "0.5")
    monkeypatch.setenv("AEROMANCY_S3_MAX_ATTEMPTS", "2")

    with pytest.raises(StoreUnavailable, match=r"did not answer within 0\.5 s") as info:
        open_store(s3_store_url).publish("proj", "data", data_dir(tmp_path))
    assert info.value.exit_code == 3


@pytest.mark.parametrize(
    "setting",
    [
        "AWS_ENDPOINT_URL=notaurl",
        "AWS_ENDPOINT_URL=ftp://host",
        "AEROMANCY_S3_TIMEOUT=soon",
        "AEROMANCY_S3_TIMEOUT=-1",
    ],
)
def test_bad_s3_settings_exit_2_on_one_line(
    s3_store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, setting: str
) -> None:
    variable, _, value = setting.partition("=")
    message = f"{variable}={value!r} is not a " + ("URL" if "URL" in variable else "number")
    data_dir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.aeromancy]\nproject = "proj"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)

    result = cli(s3_store_url, "push", "data", "data")

    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
