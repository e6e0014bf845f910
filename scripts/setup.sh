#!/bin/bash
# Prepare a fresh Debian 12 machine to run and test rootlet (run as root):
# the Debian packages, a venv at /opt/rootlet on Debian's python3 with rootlet
# built from this checkout, and the unprivileged user the rootless tests use.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(busybox-static uidmap python3 python3-venv python3-dev gcc libseccomp-dev
          iproute2 procps util-linux
          # tests/engines: the engines that run rootlet, and runc to compare with
          containerd runc crun conmon podman netavark catatonit slirp4netns
          skopeo docker-registry docker.io
          # tests/vm: ../shared/tools/run-in-vm.sh boots a pure cgroup v2 VM
          qemu-system-x86 xz-utils)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  apt-get update -qq
  # Installing docker.io, containerd or docker-registry must not start them
  # as host services (tests/engines starts private ones): deny service starts
  # for the install unless the machine already has a policy.
  policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$policy" ] || rm -f "$policy"
fi
# run-in-vm.sh fetches the guest kernel with `apt-get download`: it needs package lists.
apt-cache show linux-image-amd64 >/dev/null 2>&1 || apt-get update -qq

VENV=${ROOTLET_VENV:-/opt/rootlet}
[ -x "$VENV/bin/python3" ] || /usr/bin/python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check cython wheel setuptools pytest jsonschema ruff
"$VENV/bin/pip" install -q --disable-pip-version-check --no-build-isolation .
chmod -R a+rX "$VENV"
ln -sf "$VENV/bin/rootlet" /usr/local/bin/rootlet

id rootlet-test >/dev/null 2>&1 || useradd --create-home --shell /bin/sh rootlet-test
grep -q '^rootlet-test:' /etc/subuid || usermod --add-subuids 200000-265535 rootlet-test
grep -q '^rootlet-test:' /etc/subgid || usermod --add-subgids 200000-265535 rootlet-test
echo "$("$VENV/bin/rootlet" --version | head -1) installed in $VENV"
