# The fuzz stage of scripts/test (test/fuzz/README.md). Sourced after common.sh.

IMBUS_FUZZ_TARGETS=(frame auth directory presence msg ws)

# fuzz_stage DIR: builds the libFuzzer targets with clang in DIR, replays the corpus
# (ctest -L fuzz), then fuzzes each target for IMBUS_FUZZ_SECONDS (default 60).
# Fails on any crash, leak, timeout or out-of-memory; the input that did it is left
# in DIR/fuzz-artifacts/ (copy it into test/fuzz/corpus/<target>/ with the fix).
fuzz_stage() {
  local dir=$1 seconds=${IMBUS_FUZZ_SECONDS:-60}
  command -v clang++ >/dev/null || die "the fuzz stage needs clang++ (package clang)"
  log "building the fuzz targets in $dir (clang, libFuzzer + ASan/UBSan)"
  CC=clang CXX=clang++ build_imbus "$dir" -DIMBUS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  log "replaying the fuzz corpus"
  (cd "$dir" && ctest --output-on-failure -L fuzz --timeout 300) || die "fuzz corpus replay failed"
  local t work log corpus=$IMBUS_ROOT/test/fuzz/corpus
  mkdir -p "$dir/fuzz-artifacts" "$dir/fuzz-logs"
  for t in "${IMBUS_FUZZ_TARGETS[@]}"; do
    work=$dir/fuzz-work/$t  # new inputs go here, never into the repo's corpus
    log="$dir/fuzz-logs/$t.log"
    mkdir -p "$work"
    log "fuzzing $t for ${seconds}s"
    if ! ASAN_OPTIONS=detect_leaks=1 "$dir/bin/fuzz_$t" -max_total_time="$seconds" \
        -max_len=8192 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -dict="$IMBUS_ROOT/test/fuzz/imbus.dict" -artifact_prefix="$dir/fuzz-artifacts/$t-" \
        "$work" "$corpus/$t" >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      die "fuzz_$t failed; input in $dir/fuzz-artifacts/, log $log"
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 >&2 || true
  done
}
