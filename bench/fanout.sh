#!/bin/sh
# Fan-out bench: 1,000 shared corps, 20 ms latency, concurrency 32.
set -eu
cd "$(dirname "$0")/.."
. bench/emulator.sh
EMULATOR_ARGS="--corps ${CORPS:-1000}"
emulator_start
for rt in lua5.4 luajit; do
    printf '%s ' "$rt"
    LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH="$BUILD/$rt/?.so;;" \
        "$rt" bench/fanout.lua "$WECOM_BASE_URL" "$WECOM_CA_FILE" 20 32
done
