#!/usr/bin/env bash
# Runs the benchmark harness: xvs against kernel forwarding, nftables DNAT and kernel IPVS (where
# the ip_vs module exists) on this machine, in network namespaces of its own, and prints the
# table (docs/benchmarks.md explains it). Run as root on a fresh Debian machine: it installs
# what it needs and builds in release mode first. Arguments go to xvs-bench, for example
#   tools/bench.sh --quick                         every contender briefly (about a minute)
#   tools/bench.sh --json run.json --plots plots/  the full run, with its data and SVG plots
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
echo "== building xvsd and xvs-bench (release)" >&2
cargo build --release --quiet -p xvsd -p xvs-bench
exec target/release/xvs-bench "$@"
