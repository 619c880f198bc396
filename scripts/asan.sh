#!/bin/sh
# make asan: the library's specs (scripts/specs.sh each) on Lua 5.4 against build/asan/vertexops/core.so
# (ASan + UBSan + LSan): the specs of a host or an artifact run nginx, a rock or a C host of their
# own, not this core.
# usage: scripts/asan.sh CC [busted args...]   (CC: the compiler that built the core, clang or gcc)
# Fails when a spec fails or when any sanitizer reports anything, in the spec runner or in a Lua
# interpreter a spec starts (reports go to build/asan/logs/, printed at the end).
# Left out (by name): the valgrind spec (valgrind and ASan cannot share a process) and the RSS
# checks (ASan's quarantine and shadow memory grow RSS; LeakSanitizer checks leaks instead).
CC=${1:-clang}
[ $# -gt 0 ] && shift
ASAN_DIR=$PWD/build/asan
LOGS=$ASAN_DIR/logs

if "$CC" --version 2>/dev/null | grep -q clang; then
  RUNTIME=$("$CC" -print-file-name=libclang_rt.asan-x86_64.so) # UBSan's handlers are in it too
else
  RUNTIME="$("$CC" -print-file-name=libasan.so) $("$CC" -print-file-name=libubsan.so)"
fi
for lib in $RUNTIME; do
  [ -f "$lib" ] || { echo "asan: no sanitizer runtime for $CC ($lib)"; exit 1; }
done

unset GOOGLE_OAUTH_ACCESS_TOKEN GOOGLE_APPLICATION_CREDENTIALS GOOGLE_CLOUD_QUOTA_PROJECT VERTEXOPS_ENDPOINT VERTEXOPS_CA_FILE
export CLOUDSDK_CONFIG=/nonexistent/gcloud
export GCE_METADATA_HOST=127.0.0.1:9
export VERTEXOPS_ASAN_PRELOAD="$RUNTIME $ASAN_DIR/preload.so"
export VERTEXOPS_LUA="$PWD/scripts/asan-lua"
export ASAN_OPTIONS="detect_leaks=1:exitcode=23:log_path=$LOGS/report:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:detect_invalid_pointer_pairs=0"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$LOGS/report"
export LUA_PATH="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;"
export LUA_CPATH="./build/asan/?.so;;"

rm -rf "$LOGS"
mkdir -p "$LOGS"
out=$ASAN_DIR/busted.log
echo "== busted on lua5.4 (build/asan, ASan+UBSan+LSan via $(echo "$RUNTIME" | sed 's|[^ ]*/||g'))"
"$VERTEXOPS_LUA" "$(command -v busted)" -o utfTerminal --filter-out=valgrind --filter-out=RSS "$@" $(sh scripts/specs.sh each) >"$out" 2>&1
rc=$?
cat "$out"

status=0
summary=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$out" | tail -n 1)
if [ -z "$summary" ]; then
  echo "asan: busted did not finish (exit $rc)"
  status=1
elif [ "$rc" -ne 0 ]; then
  echo "asan: busted exited with $rc"
  status=1
fi
if grep -qE '(ERROR|WARNING): (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$out"; then
  echo "asan: a sanitizer report is in the output above"
  status=1
fi
for f in "$LOGS"/*; do
  [ -e "$f" ] || continue
  echo "== sanitizer report $f"
  cat "$f"
  status=1
done
[ "$status" -eq 0 ] && echo "asan: no sanitizer report"
exit "$status"
