"""The plugin as the Pulumi CLI runs it: ``python plugin/ ENGINE`` prints a port, GetSchema over gRPC.

The CLI's Python language host starts a source plugin with ``python <plugin dir> <engine address>``
(``__main__.py``) and reads the port from the first stdout line; ``pulumi package add`` and
``pulumi package get-schema`` then call ``GetSchema``. No Pulumi CLI exists here, so the test does
those steps itself against the real plugin process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from commerce_db_components import multilang
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

PLUGIN_DIR = Path(__file__).resolve().parents[3] / "plugin"


@pytest.fixture(scope="module")
def plugin_port() -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, str(PLUGIN_DIR), "127.0.0.1:1"],  # the engine is never called for GetSchema
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first_line: list[str] = []
    reader = threading.Thread(target=lambda: first_line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(120)  # a safety net against a hung start, not a timing assertion
    try:
        stderr = proc.stderr.read() if proc.poll() is not None else ""  # type: ignore[union-attr]
        assert first_line and first_line[0].strip().isdigit(), f"no port: {first_line!r}; {stderr}"
        yield int(first_line[0])
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stub(port: int) -> provider_pb2_grpc.ResourceProviderStub:
    return provider_pb2_grpc.ResourceProviderStub(grpc.insecure_channel(f"127.0.0.1:{port}"))


def test_get_schema_over_grpc_is_the_inferred_schema(plugin_port: int) -> None:
    response = _stub(plugin_port).GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
    served = json.loads(response.schema)
    assert served == multilang.schema()
    for component in ("PostgresCluster", "ProxyLayer", "CacheLayer", "ObservabilityLayer", "Database"):
        assert f"commerce:index:{component}" in served["resources"]


def test_plugin_info_reports_the_package_version(plugin_port: int) -> None:
    info = _stub(plugin_port).GetPluginInfo(empty_pb2.Empty(), timeout=60)
    assert info.version == multilang.package_version()


def test_plugin_manifest_and_requirements_pin_this_release() -> None:
    assert (PLUGIN_DIR / "PulumiPlugin.yaml").read_text().count("runtime: python") == 1
    requirement = next(
        line for line in (PLUGIN_DIR / "requirements.txt").read_text().splitlines() if line and line[0] != "#"
    )
    assert requirement.startswith("commerce-db[infra] @ git+")
    assert requirement.endswith(f"@v{multilang.package_version()}"), (
        "bump plugin/requirements.txt with the version"
    )
