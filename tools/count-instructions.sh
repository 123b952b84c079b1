#!/usr/bin/env bash
# Counts instructions per packet of the forwarding core with valgrind/callgrind: runs the replay
# example at two packet counts and divides the difference (setup cancels out). Deterministic for
# a given binary, unlike timings on a shared machine.
#   tools/count-instructions.sh            established DR + new connection per scheduler
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "count-instructions: valgrind is required (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --quiet -p xvs-core --example replay
bin=target/release/examples/replay
irefs() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*I *refs: *//p' | tr -d ,; }
per_packet() { # N1 N2 args...
  local n1=$1 n2=$2; shift 2
  local a b; a=$(irefs "$bin" "$n1" "$@"); b=$(irefs "$bin" "$n2" "$@")
  echo $(( (b - a) / (n2 - n1) ))
}
printf '%-28s %s\n' "path" "instructions/packet"
printf '%-28s %s\n' "established DR (wrr)" "$(per_packet 200000 400000 1024)"
for s in rr wrr lc wlc sed nq sh dh lblc lblcr mh fo ovf twos; do
  printf '%-28s %s\n' "new connection ($s)" "$(per_packet 50000 100000 1024 --new --sched=$s)"
done
