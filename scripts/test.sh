#!/bin/sh
# Runs luacheck, then the busted suite once per interpreter, then the extra stages (make asan: the
# suite under ASan+UBSan+LSan; make fuzz-smoke: each fuzzer briefly), each stage one passed or
# failed unit; the last line is "N passed, M failed".
# usage: scripts/test.sh [LUA:BUILD_DIR ...]   (default: lua5.4:build/5.4 luajit:build/jit)
# VERTEXOPS_STAGES: the extra stages (default "asan fuzz-smoke"; empty for none).
[ $# -gt 0 ] || set -- lua5.4:build/5.4 luajit:build/jit

# Hermetic: no developer credentials, no metadata server beyond loopback, no outside endpoint.
unset GOOGLE_OAUTH_ACCESS_TOKEN GOOGLE_APPLICATION_CREDENTIALS GOOGLE_CLOUD_QUOTA_PROJECT VERTEXOPS_ENDPOINT
export CLOUDSDK_CONFIG=/nonexistent/gcloud
export GCE_METADATA_HOST=127.0.0.1:9

out=$(mktemp)
passed=0
fails=0

dirs=""
for d in lua spec bin examples bench; do [ -e "$d" ] && dirs="$dirs $d"; done
if ! luacheck -q --no-color $dirs; then
  echo "luacheck: FAILED"
  fails=$((fails + 1))
fi

for pair in "$@"; do
  LUA=${pair%%:*}
  BUILD=${pair#*:}
  echo "== busted on $LUA ($BUILD)"
  VERTEXOPS_LUA="$LUA" LUA_PATH="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;" LUA_CPATH="./$BUILD/?.so;;" \
    busted --lua="$LUA" -o utfTerminal spec 2>&1 | tee "$out"
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
rm -f "$out"

for stage in ${VERTEXOPS_STAGES-asan fuzz-smoke}; do
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
