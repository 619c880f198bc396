#!/bin/sh
# The curl command as a contender: one process per call, as shell automation does it.
#   sh bench/curl_cli.sh URL CA_FILE N     prints {"calls":N,"failed":F}
url=$1 ca=$2 n=$3 i=0 failed=0
while [ "$i" -lt "$n" ]; do
  curl -sf -o /dev/null -X POST --cacert "$ca" -H "Authorization: Bearer test-token" \
    -H "Content-Type: application/json" "$url" || failed=$((failed + 1))
  i=$((i + 1))
done
printf '{"calls":%d,"failed":%d}\n' "$n" "$failed"
