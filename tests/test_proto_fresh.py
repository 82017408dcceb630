"""The generated code in jukinet/v1 is committed; it must be exactly what proto/ generates today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
SOURCES = sorted((PROTO_DIR / "jukinet" / "v1").glob("*.proto"))
COMMITTED_DIR = ROOT / "jukinet" / "v1"
HINT = "generated code in jukinet/v1 is stale: run `make proto` and commit the result"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    assert SOURCES, f"no .proto files under {PROTO_DIR}"
    out = tmp_path_factory.mktemp("protoc")
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-Iproto",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(str(p.relative_to(ROOT)) for p in SOURCES),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"protoc failed ({proc.returncode}):\n{proc.stderr}"
    gen_dir = out / "jukinet" / "v1"
    files = {p.name: p.read_bytes() for p in sorted(gen_dir.iterdir()) if p.is_file()}
    assert files, f"protoc generated nothing in {gen_dir}"
    return files


def _committed_generated() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(COMMITTED_DIR.glob("*_pb2*")) if p.is_file()}


def test_every_source_generates_all_three_files(generated: dict[str, bytes]) -> None:
    for src in SOURCES:
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            assert f"{src.stem}{suffix}" in generated, f"protoc did not generate {src.stem}{suffix}"


def test_generated_code_is_committed_and_identical(generated: dict[str, bytes]) -> None:
    committed = _committed_generated()
    missing = sorted(set(generated) - set(committed))
    assert not missing, f"not committed in jukinet/v1: {missing}; {HINT}"
    stale = sorted(name for name, data in generated.items() if committed[name] != data)
    assert not stale, f"differs from what proto/ generates: {stale}; {HINT}"


def test_no_committed_generated_file_without_source(generated: dict[str, bytes]) -> None:
    orphans = sorted(set(_committed_generated()) - set(generated))
    assert not orphans, (
        f"jukinet/v1 holds generated files without a .proto source in proto/jukinet/v1: {orphans}; "
        "delete them and run `make proto`"
    )
    stems = {p.stem for p in SOURCES}
    for name in _committed_generated():
        assert name.split("_pb2", 1)[0] in stems, f"{name} has no source .proto; run `make proto`"
