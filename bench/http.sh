#!/bin/sh
# Sequential API calls (GET /cgi-bin/agent/get against the emulator):
#   wecom.core.http_session over keep-alive, from lua5.4 and luajit
#   vs a C loop reusing one libcurl easy handle (bench/http_loop.c)
#   vs a new connection per call.
# Bars: keep-alive >= 0.8x the C loop, and >= 5x a new connection per call.
# Needs `make build`; CALLS, ROUNDS and BUILD can be overridden.
set -eu
cd "$(dirname "$0")/.."
CALLS=${CALLS:-400}        # per variant per round
ROUNDS=${ROUNDS:-10}
FRESH_CALLS=${FRESH_CALLS:-60}

. bench/emulator.sh
emulator_start
DIR=$EMULATOR_DIR

lua_run() { # runtime args...
    rt=$1; shift
    LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH="$BUILD/$rt/?.so;;" "$rt" bench/http_bench.lua "$@"
}

cc -O2 -o "$DIR/http_loop" bench/http_loop.c -lcurl
URL=$(lua_run lua5.4 url "$WECOM_BASE_URL" "$WECOM_CA_FILE")

# warm-up (nginx worker, JIT, TLS caches)
"$DIR/http_loop" "$URL" "$WECOM_CA_FILE" 200 >/dev/null
lua_run luajit keepalive "$URL" "$WECOM_CA_FILE" 200 >/dev/null

# The variants run interleaved in short rounds and each rate is total calls
# over total time, so load from other processes hits them alike.
add_time() { # seconds_so_far calls rate -> seconds
    awk -v t="$1" -v n="$2" -v r="$3" 'BEGIN { printf "%.6f", t + n / r }'
}

t_c=0; t_54=0; t_jit=0; t_fresh=0; t_noreuse=0
i=0
while [ "$i" -lt "$ROUNDS" ]; do
    t_c=$(add_time "$t_c" "$CALLS" "$("$DIR/http_loop" "$URL" "$WECOM_CA_FILE" "$CALLS")")
    t_54=$(add_time "$t_54" "$CALLS" "$(lua_run lua5.4 keepalive "$URL" "$WECOM_CA_FILE" "$CALLS")")
    t_jit=$(add_time "$t_jit" "$CALLS" "$(lua_run luajit keepalive "$URL" "$WECOM_CA_FILE" "$CALLS")")
    t_fresh=$(add_time "$t_fresh" "$FRESH_CALLS" "$(lua_run lua5.4 new_session "$URL" "$WECOM_CA_FILE" "$FRESH_CALLS")")
    t_noreuse=$(add_time "$t_noreuse" "$FRESH_CALLS" "$(lua_run lua5.4 no_reuse "$URL" "$WECOM_CA_FILE" "$FRESH_CALLS")")
    i=$((i + 1))
done
n=$((CALLS * ROUNDS)); nf=$((FRESH_CALLS * ROUNDS))
c_loop=$(awk -v n="$n" -v t="$t_c" 'BEGIN { print n / t }')
l54=$(awk -v n="$n" -v t="$t_54" 'BEGIN { print n / t }')
ljit=$(awk -v n="$n" -v t="$t_jit" 'BEGIN { print n / t }')
fresh=$(awk -v n="$nf" -v t="$t_fresh" 'BEGIN { print n / t }')
noreuse=$(awk -v n="$nf" -v t="$t_noreuse" 'BEGIN { print n / t }')

awk -v c="$c_loop" -v l54="$l54" -v ljit="$ljit" -v fresh="$fresh" -v noreuse="$noreuse" \
    -v calls="$CALLS" -v rounds="$ROUNDS" 'BEGIN {
    printf "http: sequential GET /cgi-bin/agent/get, %d rounds of %d calls per variant, interleaved\n", rounds, calls
    printf "  %-44s %9.0f calls/s\n", "C loop, one libcurl easy handle", c
    printf "  %-44s %9.0f calls/s  %.2fx C loop\n", "lua5.4 http_session, keep-alive", l54, l54 / c
    printf "  %-44s %9.0f calls/s  %.2fx C loop\n", "luajit http_session, keep-alive", ljit, ljit / c
    printf "  %-44s %9.0f calls/s\n", "lua5.4 new session per call (full handshake)", fresh
    printf "  %-44s %9.0f calls/s\n", "lua5.4 reuse = false (TLS session resumed)", noreuse
    worst = l54 < ljit ? l54 : ljit
    printf "  keep-alive vs C loop:              %.2fx (bar >= 0.8x) %s\n", worst / c, ((worst / c >= 0.8) ? "ok" : "MISSED")
    printf "  keep-alive vs new session per call: %.1fx (bar >= 5x) %s\n", worst / fresh, ((worst / fresh >= 5) ? "ok" : "MISSED")
    printf "  keep-alive vs reuse = false:        %.1fx\n", worst / noreuse
    ok = (worst / c >= 0.8 && worst / fresh >= 5)
    exit (ok ? 0 : 1)
}'
