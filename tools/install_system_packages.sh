#!/usr/bin/env bash
# Debian packages the toolkit uses, installed only when missing:
# - the offscreen renderer's OSMesa or Mesa EGL libraries (without them: the slower matplotlib backend);
# - WordNet 3.0 (wordnet-base, wordnet-sense-index -> /usr/share/wordnet) for the METEOR text metric, read by
#   poseembroider.evaluation.text_generation offline (nltk's downloader needs a network we do not have).
# Without root or sudo, prints what to install.
set -euo pipefail

have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }

gl=()
have_lib "libOSMesa.so" || gl+=(libosmesa6)
have_lib "libEGL_mesa.so" || gl+=(libegl1 libegl-mesa0 libgl1-mesa-dri)
wordnet=()  # the data only: its recommended packages are the WordNet browser programs
[ -f /usr/share/wordnet/data.noun ] || wordnet+=(wordnet-base)
[ -f /usr/share/wordnet/index.sense ] || wordnet+=(wordnet-sense-index)
missing=("${gl[@]}" "${wordnet[@]}")
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: OSMesa, EGL and WordNet present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "WARNING: missing ${missing[*]} and no root: install them with apt-get (fast offscreen rendering, METEOR)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "WARNING: missing ${missing[*]} and no apt-get: install the equivalent OSMesa/EGL libraries and WordNet 3.0" >&2
  exit 0
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_install() { $SUDO apt-get install -y -q "$@" >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "$@" >/dev/null; }; }
[ ${#gl[@]} -eq 0 ] || apt_install "${gl[@]}"
[ ${#wordnet[@]} -eq 0 ] || apt_install --no-install-recommends "${wordnet[@]}"
