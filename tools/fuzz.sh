#!/usr/bin/env bash
# Fuzzes what parses input from outside: frames (the wire parsers, the forwarder, the XDP
# steering program through BPF_PROG_TEST_RUN, as root), the control protocol, the
# configuration file and keepalived.conf, xvsadm's command line (fuzz/, cargo-fuzz layout). With a nightly
# toolchain each target runs for FUZZ_SECONDS (default 15) under libFuzzer, starting from the
# committed corpus (new inputs go to a scratch directory; a crash fails the run and is kept in
# fuzz/artifacts/). Without one the corpora are only replayed. The corpora are replayed as
# ordinary tests in either case. The output says which was done.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-15}
targets=(frame forwarder control config steer xvsadm keepalived)
if cargo +nightly --version >/dev/null 2>&1; then
  if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
  fi
  echo "fuzz: nightly toolchain present: each target for ${secs} s under libFuzzer"
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  for t in "${targets[@]}"; do
    echo "fuzz: $t"
    mkdir -p "$scratch/$t"
    cargo +nightly fuzz run --fuzz-dir fuzz "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
      grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY|Done)' || true
    # A crash leaves an artifact; cargo fuzz's status is lost in the pipe above.
    if compgen -G "fuzz/artifacts/$t/*" >/dev/null; then
      echo "fuzz: $t found a crash: fuzz/artifacts/$t/" >&2
      exit 1
    fi
  done
else
  echo "fuzz: no nightly toolchain: the corpora are replayed only"
fi
echo "fuzz: replaying the committed corpora as tests"
cargo test --manifest-path fuzz/Cargo.toml --quiet
