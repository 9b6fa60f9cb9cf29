#!/usr/bin/env bash
# Installs Debian's nginx (and openssl) for test/integration/nginx.test.ts when they are missing.
# Only the binary is wanted: the package's own service is never started here (the test runs its
# own nginx on loopback with a rendered copy of deploy/nginx.conf).
set -euo pipefail
if command -v nginx >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-nginx: nginx is missing and this is not root; run: sudo apt-get install nginx-light openssl" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101 keeps the package scripts from starting the system nginx on port 80.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends nginx openssl >/dev/null
command -v nginx
