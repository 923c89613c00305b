"""Smoke test of the benchmark harness: runs ``python -m benchmarks --quick`` on the
framing suite (tiny corpora, one repeat) and checks what it writes.  No speed
assertions: speed lives in the benchmark results, not in tests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aiostreams.cli import _missing_extra

ROOT = Path(__file__).resolve().parents[2]

_MISSING = _missing_extra("bench")
# The harness imports the peers: without the bench extra, skip (not fail, not error).
pytestmark = pytest.mark.skipif(
    bool(_MISSING), reason=f"needs the bench extra (missing: {', '.join(_MISSING)})"
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "framing", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout, proc.stderr


def test_json_has_machine_measurements_and_pairwise_ratios(
    quick_run: tuple[Path, str, str],
) -> None:
    out, _, _ = quick_run
    doc = json.loads((out / "results.json").read_text())
    assert {"machine", "run", "measurements", "ratios"} <= doc.keys()
    assert {"cpu", "cores", "python", "platform", "versions"} <= doc["machine"].keys()
    assert doc["machine"]["versions"]["httpx-sse"] != "not installed"
    rows = doc["measurements"]
    libraries = {r["library"] for r in rows}
    assert {"aiostreams", "httpx-sse", "openai", "sseclient-py"} <= libraries
    assert {r["suite"] for r in rows} == {"framing"}
    assert len({r["case"] for r in rows}) == 15  # 3 uniform + 12 realistic corpora
    for r in rows:
        assert {"suite", "case", "library", "events", "bytes", "seconds", "error"} <= r.keys()
    ours = [r for r in rows if r["library"] == "aiostreams"]
    assert ours and all(r["error"] is None and r["seconds"] and r["events_per_s"] > 0 for r in ours)
    # One ratio per peer that has a figure, each against aiostreams on the same case.
    succeeded_peers = [r for r in rows if r["library"] != "aiostreams" and r["error"] is None]
    assert len(doc["ratios"]) >= len(succeeded_peers) > 0
    assert all(r["ratio"] > 0 for r in doc["ratios"])


def test_markdown_table_is_written_and_printed(quick_run: tuple[Path, str, str]) -> None:
    out, stdout, stderr = quick_run
    md = (out / "results.md").read_text()
    assert "| case | library | events/s (median) |" in md
    assert "ratio aiostreams/peer" in md
    assert "Machine:" in md
    assert md.strip() in stdout
    assert re.search(r"^\[#+-*\] +1/\d+ framing/", stderr, re.MULTILINE)  # progress bar lines


def test_png_is_written(quick_run: tuple[Path, str, str]) -> None:
    out, _, _ = quick_run
    png = (out / "results.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
