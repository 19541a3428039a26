#!/usr/bin/env bash
# Puts another commit's relayd and gatewayd beside this tree's in one run of
# the network benchmark, round by round (old, new, old, new, ...), so both
# columns see the same machine at the same time.
#
#   tests/benches/compare_daemons.sh REV [ROUNDS] [SECTIONS...]
#   tests/benches/compare_daemons.sh cf84402 3 calls bulk memory
#
# REV is built in a git worktree under target/compare-REV (its own target
# directory). The devices always run this tree's code (they live in the
# benchmark process); only the daemons differ, through FAXMESH_DAEMONS_FROM
# (tests/src/bins.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:?usage: compare_daemons.sh REV [ROUNDS] [SECTIONS...]}
rounds=${2:-3}
shift $(( $# > 1 ? 2 : 1 ))
sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=(calls bulk memory)
short=$(git rev-parse --short "$rev")
tree=target/compare-$short
if [ ! -d "$tree" ]; then
  git worktree add --detach "$tree" "$rev" >/dev/null
fi
(cd "$tree" && cargo build --release -q -p relayd -p gatewayd)
old=$(cd "$tree" && pwd)/target/release
cargo bench -q -p faxmesh-tests --bench network --no-run 2>/dev/null || cargo bench -p faxmesh-tests --bench network --no-run
for i in $(seq 1 "$rounds"); do
  echo "=== round $i: daemons of $short (before)"
  FAXMESH_DAEMONS_FROM=$old cargo bench -q -p faxmesh-tests --bench network -- "${sections[@]}"
  echo "=== round $i: daemons of this tree (after)"
  cargo bench -q -p faxmesh-tests --bench network -- "${sections[@]}"
done
