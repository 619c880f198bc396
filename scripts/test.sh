#!/bin/sh
# make test: the whole suite, in stages, each timed; the last line is "N passed, M failed".
#   luacheck
#   busted: the library's specs once per interpreter, and the specs of a host or an artifact once
#           under Lua 5.4 (scripts/specs.sh each|once), all side by side (TEST_JOBS at a time)
#   make load   the specs that load a host, with nothing beside them (scripts/specs.sh alone)
#   make asan   the library's specs on Lua 5.4 against an ASan + UBSan + LSan core
#   make fuzz-smoke   each fuzzer briefly
#   make torture-smoke   allocation-failure torture, the committed sample of N (fuzz/torture/sample)
#   make release-check   the .deb and the source rock built afresh, unpacked, installed and run on every Lua and nginx
# A busted run counts its specs; every other stage is one passed or failed unit. Each stage prints
# its seconds, and the run fails past VERTEXOPS_TEST_BUDGET seconds (1200: 20 minutes on a clean
# 2-core machine); a stage still running then is stopped.
# usage: [TEST_JOBS=n] scripts/test.sh [LUA:BUILD_DIR ...]   (default: lua5.4:build/5.4 luajit:build/jit;
#        make test passes every interpreter: lua5.4, luajit, lua5.1, lua5.2, lua5.3)
# VERTEXOPS_STAGES: the extra stages (default "load asan fuzz-smoke torture-smoke release-check"; empty for none).
[ $# -gt 0 ] || set -- lua5.4:build/5.4 luajit:build/jit

# Hermetic: no developer credentials, no metadata server beyond loopback, no outside endpoint.
unset GOOGLE_OAUTH_ACCESS_TOKEN GOOGLE_APPLICATION_CREDENTIALS GOOGLE_CLOUD_QUOTA_PROJECT VERTEXOPS_ENDPOINT VERTEXOPS_CA_FILE
export CLOUDSDK_CONFIG=/nonexistent/gcloud
export GCE_METADATA_HOST=127.0.0.1:9

budget=${VERTEXOPS_TEST_BUDGET:-1200}
start=$(date +%s)
elapsed() { echo $(($(date +%s) - start)); }
left() { l=$((budget - $(elapsed))); [ "$l" -gt 0 ] && echo "$l" || echo 1; }
times=""
stage_time() { # $1: stage name, $2: its start (epoch seconds)
  s=$(($(date +%s) - $2))
  echo "-- $1: $s s"
  times="$times
  $(printf '%-28s %5d s' "$1" "$s")"
}

out=$(mktemp)
failed_list=""
passed=0
fails=0

t=$(date +%s)
dirs=""
for d in lua spec bin examples bench fuzz; do [ -e "$d" ] && dirs="$dirs $d"; done
if ! luacheck -q --no-color $dirs; then
  echo "luacheck: FAILED"
  fails=$((fails + 1))
  failed_list="$failed_list
  luacheck: FAILED"
fi
stage_time luacheck "$t"

# The runs go side by side, TEST_JOBS at a time (default 6: all at once; a run waits on sockets and
# servers far more than it computes). Each run starts its own fake servers on free ports; its
# output is printed whole, in order, once done.
jobs_max=${TEST_JOBS:-6}
logs=$(mktemp -d)
trap 'rm -rf "$logs" "$out"' EXIT
# Each run is a process group of its own (setsid): an interrupt ends it, its fake servers included.
trap 'for f in "$logs"/*.pid; do [ -e "$f" ] && /bin/kill -s TERM -- "-$(cat "$f")" 2>/dev/null; done; exit 130' INT TERM

each=$(sh scripts/specs.sh each)
once=$(sh scripts/specs.sh once)

run_busted() { # $1: index, $2: LUA:BUILD_DIR, $3: the spec files
  t0=$(date +%s)
  VERTEXOPS_LUA="${2%%:*}" LUA_PATH="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;" LUA_CPATH="./${2#*:}/?.so;;" \
    setsid timeout -s TERM "$(left)" busted --lua="${2%%:*}" -o utfTerminal $3 >"$logs/$1.log" 2>&1 &
  echo $! >"$logs/$1.pid"
  wait $!
  echo $(($(date +%s) - t0)) >"$logs/$1.secs"
  : >"$logs/$1.done"
}

# Prints and counts the finished runs that are next in order.
printed=0
report_done() {
  while [ "$printed" -lt "$started" ] && [ -e "$logs/$((printed + 1)).done" ]; do
    printed=$((printed + 1))
    label=$(cat "$logs/$printed.label")
    echo "== busted: $label"
    tee "$out" <"$logs/$printed.log"
    summary=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$out" | tail -n 1)
    if [ -n "$summary" ]; then
      p=$(echo "$summary" | sed -E 's/^([0-9]+) success.*/\1/')
      f=$(echo "$summary" | sed -E 's/^[0-9]+ success(es)? \/ ([0-9]+) failure.*/\2/')
      e=$(echo "$summary" | sed -E 's/.* \/ ([0-9]+) errors? \/.*/\1/')
      passed=$((passed + p))
      fails=$((fails + f + e))
      if [ $((f + e)) -gt 0 ]; then
        failed_list="$failed_list
  busted $label:
$(grep -E -A2 '^(Failure|Error) →' "$out" | sed 's/^/    /')"
      fi
    else
      echo "busted ($label) did not finish"
      fails=$((fails + 1))
      failed_list="$failed_list
  busted $label: did not finish"
    fi
    times="$times
  $(printf '%-28s %5d s' "busted $label" "$(cat "$logs/$printed.secs")")"
  done
}

t=$(date +%s)
started=0
launch() { # $1: LUA:BUILD_DIR, $2: label, $3: the spec files
  # at most jobs_max runs unfinished: wait until started - finished < jobs_max
  while [ "$(find "$logs" -name '*.done' | wc -l)" -le $((started - jobs_max)) ]; do
    report_done
    sleep 1
  done
  started=$((started + 1))
  echo "$2" >"$logs/$started.label"
  run_busted "$started" "$1" "$3" &
}
launch "lua5.4:build/5.4" "hosts and artifacts, once (lua5.4)" "$once"
for pair in "$@"; do
  launch "$pair" "${pair%%:*} (${pair#*:})" "$each"
done
while [ "$printed" -lt "$started" ]; do
  report_done
  [ "$printed" -lt "$started" ] && sleep 1
done
wait
stage_time "busted (side by side)" "$t"

for stage in ${VERTEXOPS_STAGES-load asan fuzz-smoke torture-smoke release-check}; do
  echo "== make $stage"
  t=$(date +%s)
  if [ "$(elapsed)" -ge "$budget" ]; then
    echo "make $stage: not run, the ${budget} s budget is spent"
    fails=$((fails + 1))
  elif timeout -s TERM "$(left)" make --no-print-directory "$stage"; then
    passed=$((passed + 1))
  else
    echo "make $stage: FAILED"
    fails=$((fails + 1))
    failed_list="$failed_list
  make $stage: FAILED"
  fi
  stage_time "make $stage" "$t"
done

echo "== stage times (budget ${budget} s)$times"
total=$(elapsed)
echo "  $(printf '%-28s %5d s' total "$total")"
if [ "$total" -gt "$budget" ]; then
  echo "make test took $total s, past its budget of $budget s"
  fails=$((fails + 1))
fi
# What failed, once more just above the summary: a CI log that keeps only its tail still names it.
[ -n "$failed_list" ] && echo "== what failed$failed_list"
echo "$passed passed, $fails failed"
[ "$fails" -eq 0 ]
