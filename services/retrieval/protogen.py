"""Generate the Python code of ``contracts/retrieval.proto`` into ``contracts/generated/``.

The generated modules are checked in (a server needs no build step); a test regenerates them
into a temporary directory and compares, so an edited proto without regenerated code fails.
protoc writes ``import retrieval_pb2`` into the gRPC module (it knows no packages); the import
is rewritten to the package path here, so the rewrite is part of what the test compares.

    python -m services.retrieval.protogen
"""

from __future__ import annotations

import sys
import tempfile
from importlib.resources import files
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "contracts" / "retrieval.proto"
TARGET = ROOT / "contracts" / "generated"
PACKAGE = "contracts.generated"
OUTPUTS = ("retrieval_pb2.py", "retrieval_pb2.pyi", "retrieval_pb2_grpc.py")


def generate(out_dir: Path) -> dict[str, str]:
    """The generated files (name → text), written under ``out_dir``."""
    include = str(files("grpc_tools") / "_proto")
    with tempfile.TemporaryDirectory() as scratch:
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{PROTO.parent}",
                f"-I{include}",
                f"--python_out={scratch}",
                f"--pyi_out={scratch}",
                f"--grpc_python_out={scratch}",
                PROTO.name,
            ]
        )
        if code != 0:
            raise RuntimeError(f"protoc failed on {PROTO} (exit {code})")
        texts = {name: (Path(scratch) / name).read_text() for name in OUTPUTS}
    texts["retrieval_pb2_grpc.py"] = texts["retrieval_pb2_grpc.py"].replace(
        "import retrieval_pb2 as", f"from {PACKAGE} import retrieval_pb2 as"
    )
    texts["__init__.py"] = '"""protoc output for contracts/retrieval.proto; do not edit."""\n'
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (out_dir / name).write_text(text)
    return texts


def main() -> int:
    generate(TARGET)
    print(f"wrote {', '.join(OUTPUTS)} under {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
