#!/usr/bin/env bash
# The xvs lab demo. The AF_XDP daemon is not built yet; until then this runs the forwarding
# core's replay benchmark so the command does something real.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
echo "xvs demo: the lab demo needs xvsd (not yet built); running the forwarding-core replay instead"
cargo run --release --quiet -p xvs-core --example replay -- 2000000
