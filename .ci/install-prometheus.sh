#!/usr/bin/env bash
# Installs what the metrics tests run, from Debian's packages, when it is missing:
#   prometheus, promtool           (package prometheus)
#   prometheus-postgres-exporter   (package prometheus-postgres-exporter)
#   prometheus-redis-exporter      (package prometheus-redis-exporter)
# Idempotent: does nothing when all are on PATH. The packages' services are kept from starting
# (the tests start their own on free loopback ports), so nothing is left listening on 9090.
set -euo pipefail

declare -A package_of=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-postgres-exporter]=prometheus-postgres-exporter
  [prometheus-redis-exporter]=prometheus-redis-exporter
)

missing=()
for binary in "${!package_of[@]}"; do
  command -v "$binary" >/dev/null 2>&1 || missing+=("${package_of[$binary]}")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-prometheus: prometheus, promtool and the exporters are installed"
  exit 0
fi
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-prometheus: $packages missing and there is no apt-get; install Prometheus (with promtool), postgres_exporter and redis_exporter by hand" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-prometheus: $packages missing; run this script as root" >&2
    exit 1
  fi
fi

# Keep the packages' services from starting (Debian's policy-rc.d convention), and put back
# whatever policy was there before.
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then
  saved=$(mktemp)
  $sudo cp -p "$policy" "$saved"
fi
restore() {
  if [ -n "$saved" ]; then $sudo mv "$saved" "$policy"; else $sudo rm -f "$policy"; fi
}
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
$sudo chmod +x "$policy"

echo "install-prometheus: installing $packages"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! $sudo apt-get install -y -q --no-install-recommends $packages; then
  $sudo apt-get update -q
  # shellcheck disable=SC2086
  $sudo apt-get install -y -q --no-install-recommends $packages
fi

for binary in "${!package_of[@]}"; do
  command -v "$binary" >/dev/null 2>&1 || { echo "install-prometheus: $binary is still missing after installing $packages" >&2; exit 1; }
done
prometheus --version 2>&1 | head -1
