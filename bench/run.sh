#!/bin/sh
# make bench: every benchmark, each printing its ratios against a reference
# measured in the same run.  Exits non-zero when a bar is missed.
cd "$(dirname "$0")/.."
status=0
for b in callback callback_endpoint http fanout provider openresty; do
    if [ -f "bench/$b.sh" ]; then
        echo "== $b"
        sh "bench/$b.sh" || status=1
    fi
done
exit $status
