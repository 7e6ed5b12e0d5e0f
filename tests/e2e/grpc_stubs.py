"""The gRPC client API's Python stubs, compiled from proto/airouter/v1/router.proto with
grpcio-tools as any client would (the `google.api` imports come from googleapis-common-protos)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def compile_stubs(out):
    """`(router_pb2, router_pb2_grpc)`, generated into the directory `out`."""
    from grpc_tools import protoc  # noqa: PLC0415

    include = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(["protoc", "-I", str(ROOT / "proto"), "-I", str(include),
                        "--python_out", str(out), "--grpc_python_out", str(out),
                        "airouter/v1/router.proto"])
    assert code == 0, "protoc refused proto/airouter/v1/router.proto"
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    from airouter.v1 import router_pb2, router_pb2_grpc  # noqa: PLC0415
    return router_pb2, router_pb2_grpc
