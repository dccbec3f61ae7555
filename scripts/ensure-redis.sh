#!/bin/sh
# Install Debian's redis-server for the test that shares rate-limit counters across workers (best effort:
# needs root and the package registry; the test skips with its reason when redis-server is absent).
set -e
[ "$(id -u)" = 0 ] || exit 1
command -v apt-get >/dev/null || exit 1
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq redis-server >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq redis-server >/dev/null 2>&1; }
# the package starts a system service; the test starts its own server on a free loopback port
command -v systemctl >/dev/null 2>&1 && systemctl stop redis-server >/dev/null 2>&1 || true
command -v redis-server >/dev/null
