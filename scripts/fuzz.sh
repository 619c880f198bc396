#!/bin/sh
# make fuzz / make fuzz-smoke: runs each libFuzzer harness (build/fuzz/NAME) on its corpus, one
# process on one core at a time. New corpus entries go to build/fuzz/corpus/NAME (fuzz/corpus/NAME,
# committed, is only read); a crash or broken invariant is saved under fuzz/crashes/NAME/.
# usage: scripts/fuzz.sh SECONDS NAME...   Fails when any harness finds something.
# Last line: "fuzz: N passed, M failed" (one unit per harness).
secs=$1
shift
passed=0
failed=0
for name in "$@"; do
  work=build/fuzz/corpus/$name
  crashes=fuzz/crashes/$name
  mkdir -p "$work" "$crashes"
  dict=""
  [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
  log=build/fuzz/$name.log
  echo "== fuzz $name for ${secs}s"
  ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" UBSAN_OPTIONS="print_stacktrace=1" \
    "build/fuzz/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
      -print_final_stats=1 -artifact_prefix="$crashes/" $dict "$work" "fuzz/corpus/$name" >"$log" 2>&1
  rc=$?
  grep -aE 'DONE|^stat::number_of_executed_units|^stat::peak_rss_mb|^Done [0-9]+ runs' "$log"
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    grep -aE -A12 'FINDING|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error|ERROR: libFuzzer' "$log" | head -40
    echo "fuzz $name: FAILED (exit $rc; log $log; input saved in $crashes/)"
    echo "  reproduce: build/fuzz/$name $crashes/<file>"
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
