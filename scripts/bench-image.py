#!/usr/bin/env python3
"""Generate the benchmark corpus for scripts/bench.sh: N multi-arch OCI layouts.

    bench-image.py OUT_DIR COUNT LAYER_KIB [BASE_KIB]

Writes OUT_DIR/img-01 ... OUT_DIR/img-COUNT, each an OCI image layout whose index.json names an
OCI image index "latest" over linux/amd64 and linux/arm64; each platform is a manifest, a config
and an uncompressed tar layer holding LAYER_KIB KiB of pseudo-random bytes (the image's own top
layer), on top of, when BASE_KIB is given and not 0, a base layer of BASE_KIB KiB shared by
every image of that platform, as images built FROM one base share it in real registries. The
bytes come from SHAKE-256 seeded by image and arch (by arch alone for the base): incompressible
(so transfer sizes are honest), unique per image and arch apart from the base, and reproducible
(same digests every run). Stdlib only, so the benchmark needs nothing beyond python3.
"""
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def write_blob(layout, media_type, data):
    """Store data under blobs/sha256 and return its descriptor."""
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


def canonical(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def layer_tar(seed, size):
    """A tar with one file of `size` seeded bytes; fixed metadata keeps the digest stable."""
    content = hashlib.shake_256(seed.encode()).digest(size)
    info = tarfile.TarInfo("bench/payload.bin")
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uname = info.gname = "root"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def make_image(layout, name, layer_kib, base_kib):
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    platforms = []
    for arch in ("amd64", "arm64"):
        layers = []
        if base_kib:
            layers.append(write_blob(layout, OCI_LAYER_TAR, layer_tar(f"base/{arch}", base_kib * 1024)))
        layers.append(write_blob(layout, OCI_LAYER_TAR, layer_tar(f"{name}/{arch}", layer_kib * 1024)))
        config = {
            "architecture": arch,
            "os": "linux",
            "config": {},
            # Uncompressed layers: a diff_id is the layer's own digest.
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        }
        config = write_blob(layout, OCI_CONFIG, canonical(config))
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
        manifest = write_blob(layout, OCI_MANIFEST, canonical(manifest))
        manifest["platform"] = {"architecture": arch, "os": "linux"}
        platforms.append(manifest)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": platforms}
    index = write_blob(layout, OCI_INDEX, canonical(index))
    index["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    with open(os.path.join(layout, "index.json"), "wb") as f:
        f.write(canonical({"schemaVersion": 2, "manifests": [index]}))
    with open(os.path.join(layout, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: bench-image.py OUT_DIR COUNT LAYER_KIB [BASE_KIB]")
    out, count, layer_kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    base_kib = int(sys.argv[4]) if len(sys.argv) == 5 else 0
    for i in range(1, count + 1):
        name = f"img-{i:02d}"
        make_image(os.path.join(out, name), name, layer_kib, base_kib)


if __name__ == "__main__":
    main()
