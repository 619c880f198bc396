#!/bin/sh
# Runs luacheck, then the busted suite once per interpreter (TEST_JOBS at a time, default 5), then
# the extra stages (make load: the timed load specs alone; make asan: the suite under
# ASan+UBSan+LSan; make fuzz-smoke: each fuzzer briefly), each stage one passed or failed unit;
# the last line is "N passed, M failed".
# usage: [TEST_JOBS=n] scripts/test.sh [LUA:BUILD_DIR ...]   (default: lua5.4:build/5.4 luajit:build/jit;
#        make test passes every interpreter: lua5.4, luajit, lua5.1, lua5.2, lua5.3)
# VERTEXOPS_STAGES: the extra stages (default "load asan fuzz-smoke"; empty for none).
[ $# -gt 0 ] || set -- lua5.4:build/5.4 luajit:build/jit

# Hermetic: no developer credentials, no metadata server beyond loopback, no outside endpoint.
unset GOOGLE_OAUTH_ACCESS_TOKEN GOOGLE_APPLICATION_CREDENTIALS GOOGLE_CLOUD_QUOTA_PROJECT VERTEXOPS_ENDPOINT
export CLOUDSDK_CONFIG=/nonexistent/gcloud
export GCE_METADATA_HOST=127.0.0.1:9

out=$(mktemp)
passed=0
fails=0

dirs=""
for d in lua spec bin examples bench fuzz; do [ -e "$d" ] && dirs="$dirs $d"; done
if ! luacheck -q --no-color $dirs; then
  echo "luacheck: FAILED"
  fails=$((fails + 1))
fi

# The interpreters run side by side, TEST_JOBS at a time (default 5: all at once; a run waits on
# sockets and servers far more than it computes: 150 s alone and 150 s beside four others). Each run
# starts its own fake servers on free ports; its output is printed whole, in order, once done.
jobs_max=${TEST_JOBS:-5}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# Each run is a process group of its own (setsid): an interrupt ends it, its fake servers included.
trap 'for f in "$logs"/*.pid; do [ -e "$f" ] && /bin/kill -s TERM -- "-$(cat "$f")" 2>/dev/null; done; exit 130' INT TERM

run_busted() { # $1: index, $2: LUA:BUILD_DIR
  VERTEXOPS_LUA="${2%%:*}" LUA_PATH="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;" LUA_CPATH="./${2#*:}/?.so;;" \
    setsid busted --lua="${2%%:*}" -o utfTerminal spec >"$logs/$1.log" 2>&1 &
  echo $! >"$logs/$1.pid"
  wait $!
  : >"$logs/$1.done"
}

# Prints and counts the finished runs that are next in order.
printed=0
report_done() {
  while [ "$printed" -lt "$started" ] && [ -e "$logs/$((printed + 1)).done" ]; do
    printed=$((printed + 1))
    run=$(cat "$logs/$printed.pair")
    LUA=${run%%:*}
    BUILD=${run#*:}
    echo "== busted on $LUA ($BUILD)"
    tee "$out" <"$logs/$printed.log"
    summary=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$out" | tail -n 1)
    if [ -n "$summary" ]; then
      p=$(echo "$summary" | sed -E 's/^([0-9]+) success.*/\1/')
      f=$(echo "$summary" | sed -E 's/^[0-9]+ success(es)? \/ ([0-9]+) failure.*/\2/')
      e=$(echo "$summary" | sed -E 's/.* \/ ([0-9]+) errors? \/.*/\1/')
      passed=$((passed + p))
      fails=$((fails + f + e))
    else
      echo "busted on $LUA did not finish"
      fails=$((fails + 1))
    fi
  done
}

started=0
for pair in "$@"; do
  # at most jobs_max runs unfinished: wait until started - finished < jobs_max
  while [ "$(find "$logs" -name '*.done' | wc -l)" -le $((started - jobs_max)) ]; do
    report_done
    sleep 1
  done
  started=$((started + 1))
  echo "$pair" >"$logs/$started.pair"
  run_busted "$started" "$pair" &
done
while [ "$printed" -lt "$started" ]; do
  report_done
  [ "$printed" -lt "$started" ] && sleep 1
done
wait
rm -f "$out"

for stage in ${VERTEXOPS_STAGES-load asan fuzz-smoke}; do
  echo "== make $stage"
  if make --no-print-directory "$stage"; then
    passed=$((passed + 1))
  else
    echo "make $stage: FAILED"
    fails=$((fails + 1))
  fi
done
echo "$passed passed, $fails failed"
[ "$fails" -eq 0 ]
