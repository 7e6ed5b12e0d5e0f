#!/usr/bin/env bash
# Runs fuzz targets for a bounded time each: `fuzz/run.sh SECONDS [TARGET...]` (all targets when
# none is named). Used by `make fuzz` (long) and `make test` (short). Every target runs even when
# one fails; the exit status is non-zero when any found an input that breaks a property, and each
# such input is listed with the command that saves it as a regression test.
#
# Works on the stable toolchain: with `--sanitizer none` cargo-fuzz passes rustc no unstable flag
# (only AddressSanitizer and friends need nightly; the code under test is safe Rust, so they would
# add little). The instrumented build lives in target/fuzz, apart from the normal builds; the
# release profile's LTO and stripping are turned off there (faster builds, symbolized traces).
set -uo pipefail

cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
cargo=${CARGO:-cargo}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <("$cargo" fuzz list)
fi

export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_STRIP=false
flags=(--sanitizer none --features libfuzzer --target-dir target/fuzz)

dict_of() {
  case $1 in
    json_body | sse | names) echo fuzz/dicts/json.dict ;;
    multipart) echo fuzz/dicts/multipart.dict ;;
    retry_after | auth) echo fuzz/dicts/headers.dict ;;
    config) echo fuzz/dicts/config.dict ;;
  esac
}

"$cargo" fuzz build "${flags[@]}" || exit 1

stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  opts=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1)
  dict=$(dict_of "$t")
  [ -n "$dict" ] && opts+=(-dict="$dict")
  # The saved regressions are replayed by `cargo test`, not here: one that still fails would stop
  # the run before it explores anything.
  dirs=("fuzz/corpus/$t" "fuzz/seeds/$t")
  echo "==> fuzz $t for ${seconds}s"
  log=$(mktemp)
  if "$cargo" fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- "${opts[@]}" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" | tr '\n' ' '
    echo
  else
    # The property that failed, and how to replay the input.
    sed -n -e '/panicked at/,/^note:\|^stack backtrace/p' -e '/^Failing input:/,/^$/p' "$log" | head -n 40
    failed+=("$t")
  fi
  rm -f "$log"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo
  echo "fuzzing broke a property in: ${failed[*]}"
  for t in "${failed[@]}"; do
    find "fuzz/artifacts/$t" -type f -newer "$stamp" | while read -r a; do
      echo "  $a  (keep it: mkdir -p fuzz/regressions/$t && cp $a fuzz/regressions/$t/)"
    done
  done
  exit 1
fi
