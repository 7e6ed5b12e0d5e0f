"""examples/oci/pack_wasm.py: the filter's module as an OCI image layout in Istio's Wasm image
format (the *oci* variant), checked offline: the layout passes ORAS's OCI layout validation, the
manifest's config and layer carry the Wasm media types, and the layer is the module byte for
byte."""

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "oci"))
import pack_wasm  # noqa: E402


def blob(layout, digest):
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_the_layout_holds_the_module_in_istios_wasm_image_format(tmp_path):
    wasm = tmp_path / "plugin.wasm"
    wasm.write_bytes(b"\0asm\1\0\0\0" + bytes(range(256)))  # any bytes: the format does not look inside
    layout = tmp_path / "layout"
    assert pack_wasm.main(["--wasm", str(wasm), "--layout", str(layout), "--tag", "0.1.0"]) == 0

    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "0.1.0"
    raw = blob(layout, entry["digest"])
    assert entry["size"] == len(raw)
    assert entry["digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()

    manifest = json.loads(raw)
    assert manifest["schemaVersion"] == 2
    assert manifest["config"]["mediaType"] == "application/vnd.module.wasm.config.v1+json"
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    assert config == {"type": "envoy_proxy"}
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.module.wasm.content.layer.v1+wasm"
    assert blob(layout, layer["digest"]) == wasm.read_bytes()
    assert layer["size"] == wasm.stat().st_size


def test_packing_again_gives_the_same_digest(tmp_path):
    wasm = tmp_path / "plugin.wasm"
    wasm.write_bytes(b"\0asm\1\0\0\0")
    first = pack_wasm.pack(wasm, tmp_path / "a", "latest")
    assert pack_wasm.pack(wasm, tmp_path / "a", "latest") == first
