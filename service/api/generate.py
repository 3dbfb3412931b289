"""Generate the Python gRPC code of ``proto/rulebook/v1`` into ``service/api``.

    python -m service.api.generate                 # regenerate the committed modules in place
    python -m service.api.generate --out DIR       # write them under DIR instead (for a test)

protoc (from grpcio-tools) writes ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` for each
``.proto`` file, importing each other as top-level ``rulebook.v1``; this script moves them under
the ``service.api`` package by rewriting those imports (and the module name the message classes
record) to ``service.api.rulebook.v1``. The output depends only on the ``.proto`` files and the
pinned grpcio-tools version, so a test can regenerate and compare byte for byte.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

API_DIR = Path(__file__).resolve().parent
ROOT = API_DIR.parents[1]
PROTO_DIR = ROOT / "proto"
PACKAGE = "service.api"
# The proto packages generated, as directories under PROTO_DIR.
PROTO_PACKAGES = ("rulebook/v1",)
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")

_IMPORT = re.compile(r"^(from|import) (rulebook\.v\d+)\b", re.M)
_MODULE_NAME = re.compile(r"(BuildTopDescriptorsAndMessages\(DESCRIPTOR, ')(rulebook\.v\d+\.)")


def proto_files(proto_dir: Path = PROTO_DIR) -> list[str]:
    """The .proto files to compile, as paths relative to ``proto_dir``, sorted."""
    return sorted(
        path.relative_to(proto_dir).as_posix()
        for package in PROTO_PACKAGES
        for path in (proto_dir / package).glob("*.proto")
    )


def is_generated(path: Path) -> bool:
    return path.name.endswith(GENERATED_SUFFIXES)


def rewrite(text: str) -> str:
    """Point protoc's top-level ``rulebook.v1`` imports and module names into ``service.api``."""
    text = _IMPORT.sub(rf"\1 {PACKAGE}.\2", text)
    return _MODULE_NAME.sub(rf"\1{PACKAGE}.\2", text)


def _protoc(proto_dir: Path, out: Path, files: Sequence[str]) -> None:
    from grpc_tools import protoc  # the test extra: generating is a development task

    well_known = resources.files("grpc_tools") / "_proto"  # google/protobuf/*.proto
    args = [
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {', '.join(files)}")


def generate(out: Path = API_DIR, proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Write the generated modules under ``out`` (``out/rulebook/v1/...``), replacing generated
    modules there whose .proto file is gone. Returns the files written, sorted."""
    files = proto_files(proto_dir)
    if not files:
        raise SystemExit(f"no .proto files under {proto_dir}")
    with tempfile.TemporaryDirectory() as tmp:
        _protoc(proto_dir, Path(tmp), files)
        generated = {
            path.relative_to(tmp).as_posix(): rewrite(path.read_text(encoding="utf-8"))
            for path in sorted(Path(tmp).rglob("*"))
            if path.is_file() and is_generated(path)
        }
    for package in PROTO_PACKAGES:
        target = out / package
        if target.is_dir():
            for stale in target.iterdir():
                if is_generated(stale) and stale.relative_to(out).as_posix() not in generated:
                    stale.unlink()
    written = []
    for relative, text in generated.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.api.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=API_DIR,
                        help="directory to write rulebook/v1/... under (default: service/api)")
    parser.add_argument("--proto-dir", type=Path, default=PROTO_DIR,
                        help="root of the .proto files (default: proto)")
    args = parser.parse_args(argv)
    written = generate(args.out, args.proto_dir)
    print(f"generated {len(written)} files under {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
