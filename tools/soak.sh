#!/usr/bin/env bash
# Soak: mixed traffic (TCP and UDP echo, HTTP) through a two-armed NAT lab for a bounded time,
# with reconfiguration churn (services added and deleted every second, weights edited, a real
# server added and removed) and health-check flaps (a real server's HTTP server stopped and
# started). It fails if the unchanged echo services lose or corrupt anything, if xvsd's RSS is
# not flat after warm-up, or if a UMEM frame is unaccounted for. The suite runs it for 60 s.
#
#   bash tools/soak.sh [SECONDS]      (as root; default 600)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
secs=${1:-600}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "soak: ${secs} s (release build)"
cargo build --release --quiet -p xvsd -p xvsadm
status=0
XVS_SOAK_SECONDS=$secs cargo test --release --quiet -p xvsd --test e2e_soak -- --nocapture \
  >"$log" 2>&1 || status=$?
grep -E '^soak |test result' "$log" || true
# A failure's whole message: from the panic to the backtrace.
[ "$status" = 0 ] || { sed -n '/panicked at/,/stack backtrace/p' "$log"; echo "soak: FAILED" >&2; }
exit "$status"
