#!/usr/bin/env bash
# Installs what xvs needs on a fresh Debian machine (run as root): the C toolchain for the XDP
# program and xsk-rs, the lab's clients and servers, and a Rust toolchain if none is present.
# Sourced by tools/demo.sh and tools/test.sh; safe to run repeatedly.
set -euo pipefail

XVS_APT_PACKAGES=(
  build-essential pkg-config clang llvm libclang-dev libelf-dev zlib1g-dev m4 libpcap-dev
  iproute2 ethtool tcpdump socat iputils-ping curl python3 nftables procps openssl
  linux-libc-dev kmod ipvsadm bpftool keepalived bird2 prometheus lintian file man-db
)

missing=()
for p in "${XVS_APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing a Rust toolchain with rustup" >&2
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt >/dev/null
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
