#!/usr/bin/env bash
# Mutation testing of hookgate's security-critical code, with the score it reaches.
#
#   scripts/mutants.sh                 # every scope below (about an hour on 2 cores)
#   scripts/mutants.sh verify          # one scope: verify, template, store, policy
#   scripts/mutants.sh --in-diff FILE  # only the mutants in the lines a diff touches (CI)
#
# Scopes, each run with the test suite that can catch its mutants:
#   verify    every verification scheme and secret handling   cargo test -p hookgate-verify
#   template  the template language                            cargo test -p hookgate-verify
#   store     the SQLite writer: batching, the fsync decision,
#             answering after commit, failing a batch          cargo test -p hookgate-store
#   policy    the shared retry policy                          cargo test -p hookgate-server --lib
#
# A mutant that survives is either killed by a test or listed, with its reason, in
# mutants-accepted.txt. The script prints caught / (caught + missed) per scope and overall,
# and exits 1 when a survivor is not accepted there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-mutants >/dev/null 2>&1; then
  echo "installing cargo-mutants" >&2
  cargo install cargo-mutants --locked --quiet
fi

scope_args() {
  case "$1" in
    verify)
      echo "--package hookgate-verify"
      for f in crates/verify/src/scheme/*.rs crates/verify/src/secret.rs; do echo "--file $f"; done ;;
    template)
      echo "--package hookgate-verify --file crates/verify/src/template.rs" ;;
    store)
      echo "--package hookgate-store --file crates/store/src/sqlite.rs"
      echo "--re (write_loop|commit|must_survive_a_crash|synchronous_for|Op::answer|Op::fail|Op::run|insert_event)" ;;
    policy)
      echo "--package hookgate-server --file crates/server/src/delivery/policy.rs" ;;
    *) echo "unknown scope: $1 (verify, template, store, policy)" >&2; exit 2 ;;
  esac
}

test_args() {
  case "$1" in
    policy) echo "-- --lib" ;;
    *) echo "" ;;
  esac
}

in_diff=""
scopes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --in-diff) in_diff="$2"; shift 2 ;;
    *) scopes+=("$1"); shift ;;
  esac
done
[ ${#scopes[@]} -gt 0 ] || scopes=(verify template store policy)

# A mutant's name without its line and column, so edits elsewhere in a file keep it known.
normalize() { sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /'; }
accepted=$( (grep -v "^#" mutants-accepted.txt || true) | (grep . || true) | sed -E "s/ +# .*$//" | normalize)
total_caught=0; total_missed=0; unexplained=()
for scope in "${scopes[@]}"; do
  out="target/mutants/$scope"
  rm -rf "$out"; mkdir -p "$out"
  extra=()
  [ -n "$in_diff" ] && extra+=(--in-diff "$in_diff")
  # shellcheck disable=SC2046
  cargo mutants --no-shuffle --baseline skip --timeout 60 --output "$out" \
    $(scope_args "$scope") "${extra[@]}" $(test_args "$scope") >"$out/run.log" 2>&1 || true
  dir="$out/mutants.out"
  count() { if [ -f "$dir/$1" ]; then grep -c . "$dir/$1" || true; else echo 0; fi; }
  caught=$(( $(count caught.txt) + $(count timeout.txt) ))
  missed=$(count missed.txt)
  unviable=$(count unviable.txt)
  total_caught=$((total_caught + caught)); total_missed=$((total_missed + missed))
  if [ $((caught + missed)) -gt 0 ]; then
    score=$(awk "BEGIN { printf \"%.1f\", 100 * $caught / ($caught + $missed) }")
  else
    score="-"
  fi
  printf '%-9s caught %4d  missed %3d  unviable %3d  score %s%%\n' "$scope" "$caught" "$missed" "$unviable" "$score"
  if [ -f "$dir/missed.txt" ]; then
    while IFS= read -r mutant; do
      if ! grep -qxF -- "$(normalize <<<"$mutant")" <<<"$accepted"; then
        unexplained+=("$mutant")
      fi
    done < "$dir/missed.txt"
  fi
done
if [ $((total_caught + total_missed)) -gt 0 ]; then
  echo "overall: $total_caught caught, $total_missed missed: $(awk "BEGIN { printf \"%.1f\", 100 * $total_caught / ($total_caught + $total_missed) }")% of viable mutants caught"
fi
if [ ${#unexplained[@]} -gt 0 ]; then
  echo "survivors neither killed nor accepted in mutants-accepted.txt:"
  printf '  %s\n' "${unexplained[@]}"
  exit 1
fi
