#!/usr/bin/env bash
# The xvs demo: builds a lab of network namespaces with three real HTTP servers, runs xvsd in
# front of them, sends a few hundred curl requests through the virtual IP, and prints which
# server answered how often next to its weight. Once in direct-routing mode (one-armed), once
# in NAT mode (two-armed), with xvsadm's ipvsadm-style listing of the counters and the health
# of every real server; in DR mode one web server is then stopped and its check takes it out. Everything it
# creates is removed at the end, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
requests=${XVS_DEMO_REQUESTS:-300}

echo "== building xvsd and xvsadm (release)"
cargo build --release --quiet -p xvsd -p xvsadm
xvsd=$PWD/target/release/xvsd
xvsadm=$PWD/target/release/xvsadm
prefix="xvsdemo$$-"
work=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  tools/lab.sh down --prefix "$prefix" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

run_mode() { # run_mode TITLE SHAPE CONFIG
  local title=$1 shape=$2 config=$3
  echo
  echo "== $title"
  tools/lab.sh up "$shape" --prefix "$prefix" >/dev/null
  ip netns exec "${prefix}dir" "$xvsd" --config "$config" --control-socket "$work/xvsd.sock" \
    --log-level warn 2>"$work/xvsd.log" &
  pid=$!
  for _ in $(seq 1 50); do [ -S "$work/xvsd.sock" ] && break; sleep 0.1; done
  sleep 1.5
  : > "$work/answers"
  for _ in $(seq 1 "$requests"); do
    ip netns exec "${prefix}cl" curl -s --max-time 2 http://198.18.0.10/ >> "$work/answers" || echo "(no answer)" >> "$work/answers"
  done
  echo "$requests requests to http://198.18.0.10/ from the client namespace:"
  printf '  %-8s %-8s %s\n' server weight answers
  python3 - "$config" "$work/answers" <<'PY'
import sys, re, collections
cfg, answers = open(sys.argv[1]).read(), open(sys.argv[2]).read().split()
weights = dict((f"rs{int(last)-10}", w) for last, w in re.findall(r"addr: 198\.18\.[01]\.(1\d)[^}]*weight: (\d+)", cfg))
counts = collections.Counter(answers)
for rs in sorted(weights):
    print(f"  {rs:<8} {weights[rs]:<8} {counts.get(rs, 0)}")
for k, v in counts.items():
    if k not in weights:
        print(f"  {k:<8} {'-':<8} {v}")
PY
  echo "xvsadm -Ln --stats (what ipvsadm would print):"
  "$xvsadm" --socket "$work/xvsd.sock" -Ln --stats | sed 's/^/  /'
  echo "xvsadm health (keepalived's checks, built in):"
  "$xvsadm" --socket "$work/xvsd.sock" health | sed 's/^/  /'
  [ "${4:-}" = failover ] && failover
  kill -TERM "$pid"; wait "$pid" || true; pid=""
  tools/lab.sh down --prefix "$prefix" >/dev/null
}

failover() { # stop rs2's web server; its health check takes it out of rotation
  echo
  echo "== rs2's web server stops: its HTTP check fails and xvsd takes it out"
  for p in $(ip netns pids "${prefix}rs2"); do
    tr '\0' ' ' < "/proc/$p/cmdline" | grep -q -- '-m http.server 80 ' && kill -KILL "$p"
  done
  sleep 2.5
  : > "$work/answers"
  for _ in $(seq 1 30); do
    ip netns exec "${prefix}cl" curl -s --max-time 2 http://198.18.0.10/ >> "$work/answers" || echo "(no answer)" >> "$work/answers"
  done
  echo "30 requests afterwards:"
  sort "$work/answers" | uniq -c | sed 's/^/ /'
  "$xvsadm" --socket "$work/xvsd.sock" health | sed 's/^/  /'
}
cat > "$work/dr.yaml" <<'YAML'
interfaces: [ext0]
poll_mode: adaptive
services:
  - proto: tcp
    vip: 198.18.0.10
    port: 80
    scheduler: wrr
    check: { type: http, path: /, status: [200], interval: 1, timeout: 1, fall: 2, rise: 2 }
    reals:
      - { addr: 198.18.0.11, method: dr, weight: 3 }
      - { addr: 198.18.0.12, method: dr, weight: 2 }
      - { addr: 198.18.0.13, method: dr, weight: 1 }
YAML
cat > "$work/nat.yaml" <<'YAML'
interfaces: [ext0, int0]
poll_mode: adaptive
services:
  - proto: tcp
    vip: 198.18.0.10
    port: 80
    scheduler: wrr
    check: { type: tcp, interval: 1, timeout: 1 }
    reals:
      - { addr: 198.18.1.11, port: 8080, method: nat, weight: 1 }
      - { addr: 198.18.1.12, port: 8080, method: nat, weight: 1 }
      - { addr: 198.18.1.13, port: 8080, method: nat, weight: 2 }
YAML
run_mode "direct routing (LVS-DR), one-armed, wrr 3:2:1, HTTP checks" one-armed "$work/dr.yaml" failover
run_mode "NAT (LVS-NAT), two-armed, wrr 1:1:2, port 80 -> 8080, TCP checks" two-armed "$work/nat.yaml"
echo
echo "== done: namespaces removed"
