#!/usr/bin/env bash
# Build, from Debian packages only, the two base images that can stand in for Docker Hub's python:3.11-slim and
# redis:7-alpine on a machine that reaches a Debian mirror but no container registry:
#   liqrisk-local/debian:bookworm  Debian 12 with Python 3.11 in a venv at /opt/venv (`python`, `pip` on PATH)
#   liqrisk-local/redis:7          the same with Debian's redis-server 7.0 (and redis-cli), working dir /data
# Then: LIQRISK_BASE_IMAGE=liqrisk-local/debian:bookworm LIQRISK_REDIS_IMAGE=liqrisk-local/redis:7 docker compose ...
#
# Usage: scripts/docker-local-base.sh [MIRROR]     (default: the first deb.debian.org-style URI apt uses here)
# LIQRISK_EXTRA_CA: PEM files (space-separated) that both images trust, e.g. the CA of a TLS-inspecting proxy
# that pip must pass through during `docker build`. Needs root, debootstrap and a running docker daemon.
set -euo pipefail

mirror="${1:-}"
if [ -z "$mirror" ]; then
    mirror=$(grep -hsoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* |
        head -n1 | awk '{print $2}' || true)
    mirror="${mirror:-http://deb.debian.org/debian}"
fi
base="${LIQRISK_LOCAL_BASE:-liqrisk-local/debian:bookworm}"
redis="${LIQRISK_LOCAL_REDIS:-liqrisk-local/redis:7}"
command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q debootstrap; }

rootfs=$(mktemp -d /tmp/liqrisk-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap bookworm from $mirror into $rootfs" >&2
nice -n 19 debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv bookworm "$rootfs" "$mirror" >&2
for pem in ${LIQRISK_EXTRA_CA:-}; do
    cp "$pem" "$rootfs/usr/local/share/ca-certificates/$(basename "${pem%.*}").crt"
done
chroot "$rootfs" update-ca-certificates >&2
chroot "$rootfs" python3 -m venv /opt/venv
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/* "$rootfs"/var/log/*.log

tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python"]' \
    - "$base" >&2

nice -n 19 docker build -t "$redis" - >&2 <<EOF
FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \\
    && rm -rf /var/lib/apt/lists/*
WORKDIR /data
EXPOSE 6379
CMD ["redis-server"]
EOF
echo "$base $redis"
