#!/usr/bin/env bash
# Installs what the HTML report's browser test runs, from Debian's packages, when it is missing:
#   /usr/bin/chromium   (package chromium; playwright-core drives it, no browser is downloaded)
#   a font              (package fonts-dejavu-core, so the screenshot has text)
# Idempotent: does nothing when both are there.
set -euo pipefail

packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -d /usr/share/fonts/truetype/dejavu ] || packages+=(fonts-dejavu-core)
if [ "${#packages[@]}" -eq 0 ]; then
  echo "install-chromium: chromium and a font are installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: ${packages[*]} missing and there is no apt-get; install Chromium at /usr/bin/chromium by hand" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-chromium: ${packages[*]} missing; run this script as root" >&2
    exit 1
  fi
fi

echo "install-chromium: installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -q --no-install-recommends "${packages[@]}"; then
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
[ -x /usr/bin/chromium ] || { echo "install-chromium: /usr/bin/chromium is still missing after installing ${packages[*]}" >&2; exit 1; }
/usr/bin/chromium --version 2>/dev/null || true
