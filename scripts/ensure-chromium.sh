#!/bin/sh
# Install Debian's Chromium for the browser tests of the web calculator (best effort: needs root and the package
# registry; the tests skip with their reason when /usr/bin/chromium is absent). Playwright drives this build
# through executable_path; it never downloads a browser of its own.
set -e
[ -x /usr/bin/chromium ] && exit 0
[ "$(id -u)" = 0 ] || exit 1
command -v apt-get >/dev/null || exit 1
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }
[ -x /usr/bin/chromium ]
