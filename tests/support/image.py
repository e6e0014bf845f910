"""A one-layer busybox container image, built locally in Python.

The layer is the busybox rootfs of :func:`support.bundle.build_rootfs_template`
(Debian's busybox-static plus its applet links), packed as a reproducible tar:
sorted entries, owner root, a fixed mtime. From it we write the two archive
formats the engines load:

* an OCI image layout tarball (``ctr image import``, ``skopeo copy
  oci-archive:``, ``podman load``), its layer gzip-compressed;
* a docker-archive (``docker load``, ``podman load``): manifest.json naming
  the config, the uncompressed layer and the repository tag.

Nothing is fetched: the engines never need a registry to get this image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from support.bundle import DEFAULT_PATH

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

# 2000-01-01T00:00:00Z: any fixed instant keeps the digests stable.
EPOCH = 946684800
CREATED = "2000-01-01T00:00:00Z"

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64", "i686": "386"}


def goarch() -> str:
    """The host architecture as image configs and engines spell it."""
    machine = platform.machine()
    return _GOARCH.get(machine, machine)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(rootfs: Path) -> bytes:
    """An uncompressed, reproducible tar of *rootfs* (paths relative to it)."""
    rootfs = Path(rootfs)
    entries: list[str] = []
    for top, dirs, files in os.walk(rootfs):
        dirs.sort()
        rel_top = os.path.relpath(top, rootfs)
        for name in sorted(dirs + files):
            entries.append(os.path.normpath(os.path.join(rel_top, name)))
    entries.sort()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in entries:
            path = rootfs / rel
            st = os.lstat(path)
            info = tarfile.TarInfo(rel)
            info.mode = stat.S_IMODE(st.st_mode)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = EPOCH
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.size = st.st_size
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                raise ValueError(f"{path}: only directories, files and symlinks are packed")
    return buf.getvalue()


def image_config(diff_id: str, cmd: list[str] | None = None) -> bytes:
    config = {
        "created": CREATED,
        "architecture": goarch(),
        "os": "linux",
        "config": {"Env": [DEFAULT_PATH], "Cmd": list(cmd or ["sh"]), "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "rootlet tests/support/image.py"}],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = EPOCH
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = EPOCH
    tar.addfile(info)


@dataclass
class Image:
    """What was built: the archives and the identities the engines report."""

    name: str            # fully qualified, e.g. localhost/rootlet-busybox:latest
    oci_archive: Path
    docker_archive: Path
    config_digest: str   # the image ID docker and podman show (sha256:...)
    diff_id: str         # sha256 of the uncompressed layer
    manifest_digest: str  # of the OCI manifest in oci_archive


def split_name(name: str) -> tuple[str, str]:
    """('localhost/rootlet-busybox', 'latest') from a name with an optional tag."""
    repo, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        return name, "latest"
    return repo, tag


def write_oci_archive(dest: Path, name: str, layer: bytes, config: bytes) -> str:
    """Write an OCI image layout tarball; returns the manifest digest."""
    gz = gzip.compress(layer, compresslevel=6, mtime=0)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": sha256(gz), "size": len(gz)}],
    }, separators=(",", ":")).encode()
    _repo, tag = split_name(name)
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": sha256(manifest),
            "size": len(manifest),
            "platform": {"architecture": goarch(), "os": "linux"},
            # containerd names the imported image after the first; the OCI
            # ref.name (a tag) is what skopeo and podman select an image by.
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": tag},
        }],
    }, separators=(",", ":")).encode()
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_bytes(tar, "index.json", index)
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        for blob in sorted((config, gz, manifest), key=sha256):
            _add_bytes(tar, "blobs/sha256/" + sha256(blob).split(":", 1)[1], blob)
    return sha256(manifest)


def write_docker_archive(dest: Path, name: str, layer: bytes, config: bytes) -> None:
    """Write a docker-archive (the ``docker save`` format, v1.2 manifest)."""
    config_hex = sha256(config).split(":", 1)[1]
    layer_hex = sha256(layer).split(":", 1)[1]
    repo, tag = split_name(name)
    manifest = json.dumps([{
        "Config": f"{config_hex}.json",
        "RepoTags": [f"{repo}:{tag}"],
        "Layers": [f"{layer_hex}/layer.tar"],
    }], separators=(",", ":")).encode()
    repositories = json.dumps({repo: {tag: layer_hex}}).encode()
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_dir(tar, layer_hex)
        _add_bytes(tar, f"{layer_hex}/VERSION", b"1.0")
        _add_bytes(tar, f"{layer_hex}/layer.tar", layer)
        _add_bytes(tar, f"{layer_hex}/json", json.dumps({"id": layer_hex}).encode())
        _add_bytes(tar, f"{config_hex}.json", config)
        _add_bytes(tar, "manifest.json", manifest)
        _add_bytes(tar, "repositories", repositories)


def build_busybox_image(rootfs: Path, dest_dir: Path,
                        name: str = "localhost/rootlet-busybox:latest") -> Image:
    """Both archives of a busybox image from the rootfs at *rootfs*."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    layer = layer_tar(rootfs)
    diff_id = sha256(layer)
    config = image_config(diff_id)
    oci = dest_dir / "busybox-oci.tar"
    docker = dest_dir / "busybox-docker.tar"
    manifest_digest = write_oci_archive(oci, name, layer, config)
    write_docker_archive(docker, name, layer, config)
    for p in (oci, docker):
        os.chmod(p, 0o644)
    return Image(name=name, oci_archive=oci, docker_archive=docker,
                 config_digest=sha256(config), diff_id=diff_id,
                 manifest_digest=manifest_digest)
