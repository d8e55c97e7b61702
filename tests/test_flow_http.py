"""POST /v1/telemetry/captures and GET /v1/runs (spec 003) over a real uvicorn server."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from otel_tele import bundles
from otel_tele.http_capture import capture_router

from .conftest import free_port
from .sink_samples.capture import fixture_run

RUN = "run_deterministic_72ca609c"


class AppServer:
    """uvicorn serving ``app`` on a free loopback port, in a thread of this process."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", limit_concurrency=200)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            threading.Event().wait(0.01)  # readiness poll on the server's own flag
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(10)


class Server(AppServer):
    """The capture router over ``root``."""

    def __init__(self, root: Path) -> None:
        app = FastAPI()
        app.include_router(capture_router(runs_root=root / "runs", telemetry_root=root / "telemetry"))
        super().__init__(app)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """A server over tmp_path/runs (holding the fixture run) and tmp_path/telemetry."""
    fixture_run(tmp_path / "runs", RUN)
    server = Server(tmp_path)
    try:
        yield server, tmp_path
    finally:
        server.stop()


def post(server: Server, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.client.post(
        "/v1/telemetry/captures", content=content, headers={"content-type": "application/json"}
    )


def request(run_id: str = RUN, **output: Any) -> dict[str, Any]:
    return {"source": {"type": "run", "runId": run_id}, "output": output}


def assert_no_paths(response: httpx.Response, root: Path) -> None:
    assert str(root) not in response.text and str(root.resolve()) not in response.text


def test_generate_then_conflict_then_overwrite(api: tuple[Server, Path]) -> None:
    """200 writes the bundle, 409 reports the existing one, overwrite=true regenerates it."""
    server, root = api
    first = post(server, request(captureKey="retry", overwrite=False))
    assert first.status_code == 200, first.text
    capture = first.json()["capture"]
    assert list(capture) == [
        "generated",
        "alreadyExists",
        "generatedAtUtc",
        "sourceRunId",
        "warnings",
        "supportsClassMetrics",
        "classCoverage",
        "classes",
    ]
    assert (capture["generated"], capture["alreadyExists"], capture["sourceRunId"]) == (True, False, RUN)
    assert (capture["supportsClassMetrics"], capture["classCoverage"], capture["classes"]) == (
        False,
        "missing",
        [],
    )
    bundle = bundles.read_bundle(root / "telemetry" / "retry")
    assert len(bundle.series) == 8
    autocapture = json.loads((root / "telemetry" / "retry" / "autocapture.json").read_text())
    assert autocapture["captureKey"] == "retry" and autocapture["generatedAtUtc"] == capture["generatedAtUtc"]
    assert (root / "runs" / RUN / "model" / "telemetry" / "telemetry-manifest.json").is_file()
    assert_no_paths(first, root)

    again = post(server, request(captureKey="retry"))
    assert again.status_code == 409
    assert again.json()["capture"] == {**capture, "generated": False, "alreadyExists": True, "warnings": []}

    (root / "telemetry" / "retry" / "stale.csv").write_text("old")
    third = post(server, request(captureKey="retry", overwrite=True))
    assert third.status_code == 200 and third.json()["capture"]["generated"] is True
    assert not (root / "telemetry" / "retry" / "stale.csv").exists()


def test_default_and_directory_placement(api: tuple[Server, Path]) -> None:
    """No key writes into the run's model/telemetry; a relative directory nests under the root."""
    server, root = api
    assert post(server, {"source": {"runId": RUN}}).status_code == 200  # a null type counts as "run"
    assert (root / "runs" / RUN / "model" / "telemetry" / "manifest.json").is_file()
    assert post(server, request(directory="team/a")).status_code == 200
    assert (root / "telemetry" / "team" / "a" / "manifest.json").is_file()


def test_run_listing_and_detail_carry_a_path_free_telemetry_summary(api: tuple[Server, Path]) -> None:
    """GET /v1/runs and /v1/runs/{id} report availability, time, warning count and source run."""
    server, root = api
    detail = server.client.get(f"/v1/runs/{RUN}").json()
    assert detail["telemetry"] == {
        "available": False,
        "generatedAtUtc": None,
        "warningCount": 0,
        "sourceRunId": None,
    }
    generated = post(server, request(captureKey="k")).json()["capture"]["generatedAtUtc"]
    listing = server.client.get("/v1/runs")
    assert listing.status_code == 200 and listing.json()["totalCount"] == 1
    item = listing.json()["items"][0]
    assert item["runId"] == RUN and item["templateId"] == "retry-service-time"
    assert item["telemetry"] == {
        "available": True,
        "generatedAtUtc": generated,
        "warningCount": 0,
        "sourceRunId": RUN,
    }
    assert_no_paths(listing, root)
    assert server.client.get("/v1/runs/run_missing").status_code == 404


def test_flow_runs_answer_under_the_domain_prefix_as_at_the_spec_paths(api: tuple[Server, Path]) -> None:
    """/v1/flow/runs (FlowTime runs, beside /v1/fda/runs) answers as spec 003's /v1/runs does."""
    server, root = api
    for suffix in ("", f"/{RUN}", "/run_missing"):
        flow, spec = server.client.get(f"/v1/flow/runs{suffix}"), server.client.get(f"/v1/runs{suffix}")
        assert (flow.status_code, flow.json()) == (spec.status_code, spec.json())
        assert_no_paths(flow, root)
    assert server.client.get("/v1/flow/runs").json()["items"][0]["runId"] == RUN
    assert server.client.get("/v1/flow/runs/run_missing").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "Request body is required."),
        (b"[1, 2", "Request body must be a JSON object."),
        (
            {"source": {"type": "model", "runId": RUN}},
            "source.type must be 'run' and source.runId is required.",
        ),
        ({"source": {"type": "run"}}, "source.type must be 'run' and source.runId is required."),
        ({"output": {"captureKey": "x"}}, "source.type must be 'run' and source.runId is required."),
        (request(overwrite="yes"), "output.overwrite must be true or false."),
        (request(captureKey=7), "output.captureKey must be a string."),
    ],
)
def test_bad_requests_get_400_with_flowtimes_messages(
    api: tuple[Server, Path], body: Any, message: str
) -> None:
    """Malformed bodies are 400 {error}, with FlowTime's wording where it has one."""
    server, _root = api
    response = post(server, body)
    assert response.status_code == 400 and response.json() == {"error": message}


@pytest.mark.parametrize(
    "output",
    [
        {"captureKey": "../escape"},
        {"captureKey": ".."},
        {"captureKey": "/abs"},
        {"captureKey": "a/b"},
        {"captureKey": "a\x00b"},
        {"captureKey": "..%2F..%2Fetc"},
        {"captureKey": "%2e%2e"},
        {"captureKey": "a\\b"},
        {"captureKey": ""},
        {"directory": "/tmp/elsewhere"},
        {"directory": "a/../../b"},
        {"directory": "C:\\x"},
        {"directory": "ok/%2e%2e/x"},
    ],
)
def test_capture_targets_cannot_escape_the_telemetry_root(
    api: tuple[Server, Path], output: dict[str, Any]
) -> None:
    """Traversal, absolute paths, NUL and URL-encoded tricks in captureKey/directory are 400."""
    server, root = api
    response = post(server, request(**output))
    assert response.status_code == 400 and "error" in response.json()
    assert_no_paths(response, root)
    assert not (root / "telemetry").exists() or not any((root / "telemetry").iterdir())


@pytest.mark.parametrize("run_id", ["../runs/" + RUN, "/etc", "..", "a\x00b", "%2e%2e%2Fx", RUN + "/../x"])
def test_run_ids_cannot_escape_the_runs_root(api: tuple[Server, Path], run_id: str) -> None:
    """A run id that is not one safe segment is 400 in the body and in the URL."""
    server, _root = api
    assert post(server, request(run_id)).status_code == 400


@pytest.mark.parametrize("raw", ["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a%00b", "..", "%2e%2e"])
def test_url_encoded_run_ids_are_400(api: tuple[Server, Path], raw: str) -> None:
    """GET /v1/runs/{id} with encoded separators, dots or NUL is refused with 400."""
    server, _root = api
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:  # http.client sends the path as given (httpx would remove "..")
        connection.request("GET", f"/v1/runs/{raw}")
        response = connection.getresponse()
        assert response.status == 400, (raw, response.status, response.read())
    finally:
        connection.close()


def test_symlinks_are_not_followed(
    api: tuple[Server, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A captureKey or run id that is a symlink (even to a real run) is 400; nothing is written."""
    server, root = api
    outside = tmp_path_factory.mktemp("outside")
    (root / "telemetry").mkdir()
    os.symlink(outside, root / "telemetry" / "linked")
    assert post(server, request(captureKey="linked")).status_code == 400
    assert list(outside.iterdir()) == []
    os.symlink(root / "runs" / RUN, root / "runs" / "alias")
    assert post(server, request("alias")).status_code == 400
    assert server.client.get("/v1/runs/alias").status_code == 400


def test_unknown_run_is_404_and_a_broken_run_is_500(api: tuple[Server, Path]) -> None:
    """404 names the run only; a failing capture is a 500 problem body without paths."""
    server, root = api
    missing = post(server, request("run_nope", captureKey="x"))
    assert missing.status_code == 404 and missing.json() == {"error": "Run 'run_nope' was not found."}
    broken = fixture_run(root / "runs", "run_broken")
    (broken / "spec.yaml").unlink()
    (broken / "model" / "model.yaml").unlink()
    failed = post(server, request("run_broken", captureKey="b"))
    assert failed.status_code == 500 and failed.headers["content-type"].startswith("application/problem+json")
    body = failed.json()
    assert body["title"] == "Telemetry generation failed" and body["status"] == 500
    assert "spec.yaml not found" in body["detail"]
    assert_no_paths(failed, root)


def test_fifty_identical_concurrent_requests_give_one_success(api: tuple[Server, Path]) -> None:
    """The exists-check and the write are one atomic step: 1 x 200 and 49 x 409."""
    server, root = api
    barrier = threading.Barrier(50)
    statuses: list[int] = []
    lock = threading.Lock()

    def hit() -> None:
        barrier.wait()
        status = post(server, request(captureKey="race")).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=hit) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] + [409] * 49
    assert len(bundles.read_bundle(root / "telemetry" / "race").series) == 8


def _outside(factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """A directory outside every root holding files an attacker would like overwritten or deleted."""
    outside = factory.mktemp("outside")
    files = {"precious.txt": b"do not delete", "manifest.json": b'{"mine": true}'}
    for name, data in files.items():
        (outside / name).write_bytes(data)
    return outside, files


def _untouched(outside: Path, files: dict[str, bytes]) -> None:
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == files


@pytest.mark.parametrize("link", ["model/telemetry", "model"])
def test_the_default_target_cannot_be_a_link_out_of_the_root(
    api: tuple[Server, Path], tmp_path_factory: pytest.TempPathFactory, link: str
) -> None:
    """A run whose model/telemetry (or model) links outside: 400, with or without overwrite, and
    nothing outside is written or deleted."""
    server, root = api
    outside, files = _outside(tmp_path_factory)
    run_dir = root / "runs" / RUN
    if link == "model":
        shutil.rmtree(run_dir / "model")
    os.symlink(outside, run_dir / link)
    for overwrite in (False, True):
        response = post(server, {"source": {"runId": RUN}, "output": {"overwrite": overwrite}})
        assert response.status_code == 400, response.text
        assert "symbolic link" in response.json()["error"]
        assert_no_paths(response, root)
    _untouched(outside, files)
    # A captureKey target still writes telemetry-manifest.json into model/telemetry: refused too.
    assert post(server, request(captureKey="k")).status_code in (400, 500)
    _untouched(outside, files)


def test_overwrite_never_follows_links_inside_the_capture_directory(
    api: tuple[Server, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Clearing deletes regular files only: a link to an outside file is left, as is its target;
    a planted telemetry-manifest.json link is replaced, not written through."""
    server, root = api
    outside, files = _outside(tmp_path_factory)
    assert post(server, request(captureKey="retry")).status_code == 200
    capture = root / "telemetry" / "retry"
    os.symlink(outside / "precious.txt", capture / "evil.csv")
    os.symlink(outside, capture / "evil_dir")
    telemetry_manifest = root / "runs" / RUN / "model" / "telemetry" / "telemetry-manifest.json"
    telemetry_manifest.unlink()
    os.symlink(outside / "manifest.json", telemetry_manifest)
    response = post(server, request(captureKey="retry", overwrite=True))
    assert response.status_code == 200, response.text
    _untouched(outside, files)
    assert not telemetry_manifest.is_symlink()
    assert json.loads(telemetry_manifest.read_bytes())["provenance"]["runId"] == RUN
    assert len(bundles.read_bundle(capture).series) == 8


def test_a_planted_lock_file_link_creates_nothing_outside(
    api: tuple[Server, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The per-directory lock file is opened without following a link."""
    server, root = api
    outside, files = _outside(tmp_path_factory)
    (root / "telemetry").mkdir()
    os.symlink(outside / "created-by-lock", root / "telemetry" / ".locked.capture-lock")
    assert post(server, request(captureKey="locked")).status_code == 400
    _untouched(outside, files)


def test_run_files_behind_links_are_not_read(
    api: tuple[Server, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """run.json, the model and series files reached through a link are never read: the run is not
    listed, and capturing it fails without echoing what the link points to."""
    server, root = api
    outside = tmp_path_factory.mktemp("secret")
    (outside / "run.json").write_text(json.dumps({"runId": "SECRET-RUN-ID", "createdUtc": "x"}))
    (outside / "series.csv").write_text("bin_index,value\n0,4242\n")
    linked = fixture_run(root / "runs", "run_linked")
    (linked / "run.json").unlink()
    os.symlink(outside / "run.json", linked / "run.json")
    listing = server.client.get("/v1/runs")
    assert "SECRET-RUN-ID" not in listing.text and listing.json()["totalCount"] == 1
    assert "SECRET-RUN-ID" not in server.client.get("/v1/runs/run_linked").text
    assert post(server, request("run_linked", captureKey="a")).status_code == 500
    series_run = fixture_run(root / "runs", "run_series_link")
    index = json.loads((series_run / "series" / "index.json").read_text(encoding="utf-8-sig"))
    target = series_run / index["series"][0]["path"]
    target.unlink()
    os.symlink(outside / "series.csv", target)
    failed = post(server, request("run_series_link", captureKey="b"))
    assert failed.status_code == 500 and "symbolic link" in failed.json()["detail"]
    assert not (root / "telemetry" / "b" / "manifest.json").exists()
    assert_no_paths(failed, root)


@pytest.mark.parametrize("name", ["ok\n", "ok\r", "ok\t", "ok ", "\nok", "ok\u2028", "\u043ek"])
def test_segments_match_the_whole_string(api: tuple[Server, Path], name: str) -> None:
    """A trailing newline (or any character outside the set) anywhere is 400 in every field."""
    server, root = api
    fixture_run(root / "runs", "ok")
    for body in (request(name), request("ok", captureKey=name), request("ok", directory=f"a/{name}")):
        response = post(server, body)
        assert response.status_code == 400, (body, response.text)
    assert not (root / "telemetry").exists() or not any((root / "telemetry").rglob("*"))
