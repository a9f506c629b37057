#!/usr/bin/env bash
# Debian packages the offscreen renderer needs (OSMesa, or Mesa's EGL), installed only when missing.
# Without root or sudo, prints what to install; rendering then falls back to the slower matplotlib backend.
set -euo pipefail

have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }

missing=()
have_lib "libOSMesa.so" || missing+=(libosmesa6)
have_lib "libEGL_mesa.so" || missing+=(libegl1 libegl-mesa0 libgl1-mesa-dri)
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: OSMesa and EGL present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "WARNING: missing ${missing[*]} and no root: install them with apt-get for fast offscreen rendering" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "WARNING: missing ${missing[*]} and no apt-get: install the equivalent OSMesa/EGL libraries" >&2
  exit 0
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q "${missing[@]}" >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null; }
