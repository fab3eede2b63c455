"""The checked-in AsyncAPI documents match what `faststream docs gen` makes from the code."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ["orders", "payments", "shipping", "points", "notify"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_asyncapi_document_of_each_service_is_current_and_documents_its_topics(service, tmp_path):
    out = tmp_path / f"{service}.json"
    faststream = Path(sys.executable).with_name("faststream")
    subprocess.run(
        [str(faststream), "docs", "gen", f"ordermesh_{service}.app:create_app", "--factory", "--out", str(out)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    generated = json.loads(out.read_text())
    checked_in = json.loads((ROOT / "asyncapi" / f"{service}.json").read_text())
    assert generated == checked_in, f"asyncapi/{service}.json is stale: run `make docs`"
    assert any(name.startswith(f"{service}:") for name in generated["channels"])
    assert generated["components"]["schemas"], "payload schemas are documented"
