#!/usr/bin/env python3
"""make-image.py ROOTFS OUT.tar NAME [ENTRYPOINT...]: an OCI image archive
(one layer) from a directory, for `ctr images import`. Without ENTRYPOINT
the image runs `sh`. Standard library only."""
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile

rootfs, out, name = sys.argv[1:4]
entrypoint = sys.argv[4:]
raw = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True, check=True).stdout
with tempfile.TemporaryDirectory() as layout:
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    layer = put(gzip.compress(raw, 1))
    config = put(json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": dict({"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
                       **({"Entrypoint": entrypoint} if entrypoint else {"Cmd": ["sh"]})),
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
    }).encode())
    manifest = put(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar+gzip")],
    }).encode())
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [dict(manifest,
                   mediaType="application/vnd.oci.image.manifest.v1+json",
                   annotations={"org.opencontainers.image.ref.name": name, "io.containerd.image.name": name})]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    subprocess.run(["tar", "-C", layout, "-cf", out, "."], check=True)
