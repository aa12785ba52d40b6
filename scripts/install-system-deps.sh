#!/usr/bin/env bash
# Installs the Debian packages the platform runs with: Orthanc and its DICOMweb plugin, dicom3tools (dciodvfy), and
# tcmalloc, the server's memory allocator (extensions/awesomme/runtime/allocator.py).
# With --test-tools also chromium (/usr/bin/chromium), the real browser the viewer tests drive through Playwright,
# postgresql: the tests start throwaway clusters from its /usr/lib/postgresql/<version>/bin (tests/postgres.py), and
# nginx-light: the TLS-terminating reverse proxy tests/integration/test_tls_proxy.py puts in front of the server,
# and dcmtk: its dcmqrscp is the hospital PACS peer of tests/integration/test_pacs.py.
# What a bare Debian 12 lacks for `make run`: python3-venv (the platform's virtual environment), python3-dev and
# build-essential (a wheel-less Python package compiles against them), and nodejs with npm (the viewer's plugin is
# built with esbuild and tested with vitest; the prebuilt OHIF viewer is fetched with npm), unless a Node.js with
# npm is already installed (e.g. a newer one from NodeSource, which Debian's package would conflict with).
# Orthanc's own service is not started: the platform runs its own instance with a private configuration under var/.
set -euo pipefail
packages=(orthanc orthanc-dicomweb dicom3tools libtcmalloc-minimal4 python3-venv python3-dev build-essential)
if ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi
if [ "${1:-}" = "--test-tools" ]; then packages+=(chromium postgresql nginx-light dcmtk); fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
apt_get() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"; }
apt_get update -qq
# A policy-rc.d for the install keeps the packages from starting their system-wide services (Orthanc, nginx,
# PostgreSQL) where an init system would: the platform and the tests start their own, on loopback.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
apt_get install -y -qq --no-install-recommends "${packages[@]}"
