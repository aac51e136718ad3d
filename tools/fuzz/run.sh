#!/bin/sh
# tools/fuzz/run.sh - build the libFuzzer harnesses and run each for a while.
#
#   sh tools/fuzz/run.sh [seconds per harness, default 60] [harness ...]
#
# Needs clang and libclang-rt-14-dev (Debian).  Builds into $FUZZ_BUILD
# (default /tmp/wecom-fuzz); the working corpora grow there, seeded from
# tools/fuzz/corpus/<harness>/.  Crashes land in $FUZZ_BUILD/<harness>/.
# One harness at a time, one job each.
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FUZZ_BUILD:-/tmp/wecom-fuzz}
harnesses=${*:-"fuzz_xml fuzz_xml_swar fuzz_callback_open fuzz_base64 fuzz_redis_reader"}

CC=${FUZZ_CC:-clang}
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -fno-omit-frame-pointer -std=c99 -D_GNU_SOURCE -I/usr/include/lua5.4 -I$root/src"
LIBS="-llua5.4 -lcurl -lcrypto -lexpat -lhiredis -lpthread -lm"

mkdir -p "$out/bin"
for h in $harnesses; do
    src=$h extra=
    if [ "$h" = fuzz_xml_swar ]; then
        # the same harness over the 8-byte (non-SSE2) scanner
        src=fuzz_xml extra=-DWECOM_XML_NO_SIMD
    fi
    # shellcheck disable=SC2086
    $CC $FLAGS $extra -o "$out/bin/$h" "$here/$src.c" "$root"/src/*.c $LIBS
done

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for h in $harnesses; do
    seeds=$h
    [ "$h" = fuzz_xml_swar ] && seeds=fuzz_xml
    mkdir -p "$out/$h/corpus" "$out/$h/crashes"
    echo "== $h: $secs s"
    dict=
    [ -f "$here/$seeds.dict" ] && dict="-dict=$here/$seeds.dict"
    # shellcheck disable=SC2086
    "$out/bin/$h" -max_total_time="$secs" -print_final_stats=1 \
        -max_len=4096 -rss_limit_mb=2048 -malloc_limit_mb=1024 $dict \
        -artifact_prefix="$out/$h/crashes/" \
        "$out/$h/corpus" "$here/corpus/$seeds" 2>"$out/$h/log" \
        || { tail -n 60 "$out/$h/log"; exit 1; }
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$out/$h/log" || true
done
