#!/bin/sh
# Runs luacheck and the busted suite; the last line is "N passed, M failed".
# usage: scripts/test.sh LUA BUILD_DIR
LUA=${1:-lua5.4}
BUILD=${2:-build/5.4}
# Hermetic: no developer credentials, no metadata server beyond loopback, no outside endpoint.
unset GOOGLE_OAUTH_ACCESS_TOKEN GOOGLE_APPLICATION_CREDENTIALS GOOGLE_CLOUD_QUOTA_PROJECT VERTEXOPS_ENDPOINT
export CLOUDSDK_CONFIG=/nonexistent/gcloud
export GCE_METADATA_HOST=127.0.0.1:9
out=$(mktemp)
failed=0
dirs=""
for d in lua spec bin examples bench; do [ -e "$d" ] && dirs="$dirs $d"; done
luacheck -q --no-color $dirs >"$out.lint" 2>&1
lint=$?
cat "$out.lint"
[ $lint -eq 0 ] || failed=1

VERTEXOPS_LUA="$LUA" LUA_PATH="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;" LUA_CPATH="./$BUILD/?.so;;" \
  busted --lua="$LUA" -o utfTerminal --no-auto-insulate spec 2>&1 | tee "$out"
summary=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$out" | tail -n 1)
if [ -n "$summary" ]; then
  passed=$(echo "$summary" | sed -E 's/^([0-9]+) success.*/\1/')
  fails=$(echo "$summary" | sed -E 's/^[0-9]+ success(es)? \/ ([0-9]+) failure.*/\2/')
  errors=$(echo "$summary" | sed -E 's/.* \/ ([0-9]+) errors? \/.*/\1/')
  fails=$((fails + errors))
else
  passed=0
  fails=1
fi
[ $lint -eq 0 ] || fails=$((fails + 1))
rm -f "$out" "$out.lint"
echo "$passed passed, $fails failed"
[ "$fails" -eq 0 ]
