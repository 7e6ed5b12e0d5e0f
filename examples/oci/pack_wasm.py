#!/usr/bin/env python3
"""Packs the filter's .wasm as an OCI image in Istio's Wasm image format (the *oci* variant of the
Wasm image specification, which Istio's agent and Envoy Gateway pull): an OCI image manifest whose
config is the runtime configuration (`application/vnd.module.wasm.config.v1+json`: the runtime
`envoy_proxy`; the root ids, optional there, are left to the manifests that name them) and whose one layer is the module itself
(`application/vnd.module.wasm.content.layer.v1+wasm`), written as an OCI image layout directory and
pushed from it with ORAS (the `oras` Python SDK: `pip install oras==0.2.43`).

    examples/oci/pack_wasm.py --layout target/oci-wasm                 # the layout only (offline)
    examples/oci/pack_wasm.py --layout target/oci-wasm --push registry.example/airouter/filter:0.1.0

The layout is checked with ORAS's own OCI layout validation before anything is pushed. The
manifest's digest (printed, without its `sha256:`) is what `airouter istio --wasm-sha256` takes:
Istio checks a pulled image against it.
"""

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import oras.defaults
import oras.layout
import oras.oci
import oras.provider

ROOT = Path(__file__).resolve().parent.parent.parent
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "airouter_filter.wasm"
CONFIG_MEDIA_TYPE = "application/vnd.module.wasm.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.module.wasm.content.layer.v1+wasm"


def blob(layout, path):
    """Copies `path` into the layout's blob store; returns its digest."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    target = layout / "blobs" / "sha256" / digest
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return "sha256:" + digest


def pack(wasm, layout, tag):
    """Writes the OCI image layout for `wasm` at `layout` (emptied first), tagged `tag`; returns
    the manifest's digest."""
    layout = Path(layout)
    if layout.exists():
        shutil.rmtree(layout)
    layout.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "runtime-config.json"
        config.write_text(json.dumps({"type": "envoy_proxy"}))
        manifest = oras.oci.NewManifest()
        manifest["config"], _ = oras.oci.ManifestConfig(str(config), CONFIG_MEDIA_TYPE)
        manifest["config"]["annotations"] = {"org.opencontainers.image.title": "runtime-config.json"}
        layer = oras.oci.NewLayer(str(wasm), LAYER_MEDIA_TYPE)
        layer["annotations"] = {"org.opencontainers.image.title": "plugin.wasm"}
        manifest["layers"] = [layer]
        blob(layout, config)
        blob(layout, Path(wasm))
        manifest_file = Path(tmp) / "manifest.json"
        manifest_file.write_text(json.dumps(manifest))
        digest = blob(layout, manifest_file)
        size = manifest_file.stat().st_size
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "mediaType": oras.defaults.default_index_media_type,
        "manifests": [{
            "mediaType": oras.defaults.default_manifest_media_type,
            "digest": digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }
    (layout / "index.json").write_text(json.dumps(index))
    oras.layout.NewLayout(str(layout))  # ORAS's OCI layout validation
    return digest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wasm", type=Path, default=WASM, help="the module (default: the release build)")
    ap.add_argument("--layout", type=Path, required=True, help="the OCI image layout directory to write")
    ap.add_argument("--tag", default="latest", help="the tag inside the layout")
    ap.add_argument("--push", metavar="REGISTRY/REPO:TAG", help="push the layout there")
    ap.add_argument("--insecure", action="store_true", help="plain HTTP to the registry")
    args = ap.parse_args(argv)
    if not args.wasm.is_file():
        print("%s not found; run `make wasm`" % args.wasm, file=sys.stderr)
        return 1
    digest = pack(args.wasm, args.layout, args.tag)
    print("layout %s: manifest %s" % (args.layout, digest))
    if args.push:
        registry = oras.provider.Registry(insecure=args.insecure)
        oras.layout.NewLayout(str(args.layout)).push_to_registry(registry, args.push, tag=args.tag)
        print("pushed oci://%s" % args.push)
    return 0


if __name__ == "__main__":
    sys.exit(main())
