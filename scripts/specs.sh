#!/bin/sh
# Lists the spec files of one kind, for scripts/test.sh, scripts/asan.sh and make load.
# usage: scripts/specs.sh each|once|alone
#   each   the library's specs: run once per interpreter (the default: no marker)
#   once   specs of a host or an artifact (nginx, packaging, a C host): one run, under Lua 5.4;
#          marked by a line "-- make test: once"
#   alone  specs that load a host with nothing beside them (make load); "-- make test: alone"
#   (a spec marked "-- make test: release-check" is make release-check's alone: spec/14_docs_release_spec.lua)
case "$1" in
  each)  grep -L -E '^-- make test: (once|alone|release-check)' spec/*_spec.lua ;;
  once)  grep -l -x -e '-- make test: once' spec/*_spec.lua ;;
  alone) grep -l -x -e '-- make test: alone (make load)' spec/*_spec.lua ;;
  *) echo "usage: scripts/specs.sh each|once|alone" >&2; exit 2 ;;
esac
