"""Our proto/kserve definitions are wire-compatible with Triton's: every message and field we
declare exists in the descriptors shipped with tritonclient, with the same number, type and label,
and every RPC has the same request and response types."""

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    out = tmp_path_factory.mktemp("fds") / "kserve.pb"
    include = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(["protoc", "-I", str(ROOT / "proto"), "-I", str(include), "--include_imports",
                        "--descriptor_set_out", str(out), "kserve/grpc_service.proto", "kserve/model_config.proto"])
    assert code == 0
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    return [f for f in fds.file if f.package == "inference"]


def theirs():
    from tritonclient.grpc import model_config_pb2, service_pb2
    files = []
    for mod in (service_pb2, model_config_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        mod.DESCRIPTOR.CopyToProto(proto)
        files.append(proto)
    return files


def messages(files):
    """Fully qualified message name -> DescriptorProto, nested messages included."""
    out = {}

    def walk(prefix, msgs):
        for m in msgs:
            name = prefix + "." + m.name
            out[name] = m
            walk(name, m.nested_type)

    for f in files:
        walk(f.package, f.message_type)
    return out


def test_every_field_matches_tritons(ours):
    mine, triton = messages(ours), messages(theirs())
    checked = 0
    for name, msg in mine.items():
        assert name in triton, "message %s does not exist in Triton's definitions" % name
        their_fields = {f.name: f for f in triton[name].field}
        for f in msg.field:
            assert f.name in their_fields, "%s.%s does not exist in Triton's definitions" % (name, f.name)
            t = their_fields[f.name]
            assert (f.number, f.type, f.label) == (t.number, t.type, t.label), "%s.%s differs" % (name, f.name)
            if f.type_name:
                assert f.type_name == t.type_name, "%s.%s has type %s, Triton %s" % (name, f.name, f.type_name, t.type_name)
            checked += 1
    assert checked > 60


def test_enum_values_match(ours):
    def enums(files):
        return {e.name: {v.name: v.number for v in e.value} for f in files for e in f.enum_type}
    mine, triton = enums(ours), enums(theirs())
    for name, values in mine.items():
        for v, number in values.items():
            assert triton[name][v] == number, "%s.%s" % (name, v)


def test_rpcs_match(ours):
    def rpcs(files):
        return {(s.name, m.name): (m.input_type, m.output_type, m.client_streaming, m.server_streaming)
                for f in files for s in f.service for m in s.method}
    mine, triton = rpcs(ours), rpcs(theirs())
    assert len(mine) == 7
    for key, sig in mine.items():
        assert triton.get(key) == sig, key
