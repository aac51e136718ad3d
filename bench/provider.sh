#!/bin/sh
# Provider benches: a fleet of 8 processes over 1,000 authorized corps on a
# cold file store and a cold Redis store (1 get_suite_token, 1 get_corp_token
# per corp), and suite:each_corp over 10,000 authorized corps at 20 ms
# latency, concurrency 64 (<= 1.3x the ideal 6.25 s, peak RSS <= 64 MB).
set -eu
cd "$(dirname "$0")/.."
. bench/emulator.sh
FANOUT_CORPS=${PROVIDER_CORPS:-10000}
FLEET_CORPS=${FLEET_CORPS:-1000}
EMULATOR_ARGS="--corps $FANOUT_CORPS"
emulator_start
WORK=$(mktemp -d /tmp/wecom-provider-bench.XXXXXX)
trap 'emulator_stop; rm -rf "$WORK"' EXIT INT TERM
status=0
for rt in lua5.4 luajit; do
    export LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH="$BUILD/$rt/?.so;;"
    printf '%s ' "$rt"
    "$rt" bench/provider_fleet.lua "$WECOM_BASE_URL" "$WECOM_CA_FILE" "$FLEET_CORPS" 8 || status=1
    mkdir -p "$WORK/$rt"
    "$rt" bench/provider_setup.lua "$WECOM_BASE_URL" "$WECOM_CA_FILE" file "$WORK/$rt" "$FANOUT_CORPS" \
        "$WORK/$rt.codes.json" >/dev/null
    printf '%s ' "$rt"
    "$rt" bench/provider_fanout.lua "$WECOM_BASE_URL" "$WECOM_CA_FILE" "$WORK/$rt.codes.json" 20 64 || status=1
done
exit $status
