#!/usr/bin/env bash
# Runs the whole xvs test suite: formatting, lints, unit/property/fixture tests, and the
# end-to-end lab tests (root is required for network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace --quiet
echo "== fuzzing"
bash tools/fuzz.sh
echo "== Debian package"
bash tools/test-package.sh
echo "== benches and examples build"
cargo build --release --quiet -p xvs-core --example replay
cargo bench --workspace --no-run --quiet
echo "== all tests passed"
