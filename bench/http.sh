#!/bin/sh
# Sequential API calls (GET /cgi-bin/agent/get against the emulator):
#   wecom.core.http_session over keep-alive, from lua5.4 and luajit
#   vs a C loop reusing one libcurl easy handle (bench/http_loop.c)
#   vs a new connection per call.
# Bars: keep-alive >= 0.8x the C loop, and >= 5x a new connection per call.
# Needs `make build`; CALLS, ROUNDS and BUILD can be overridden.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CALLS=${CALLS:-2000}
ROUNDS=${ROUNDS:-5}
FRESH_CALLS=${FRESH_CALLS:-300}

DIR=$(mktemp -d /tmp/wecom-bench-http.XXXXXX)
cleanup() {
    lua5.4 bin/wecom-emulator stop --dir "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

core_opt=""
[ -f "$BUILD/luajit/wecom/core.so" ] && core_opt="--core-cpath $BUILD/luajit"
started=""
for try in 1 2 3 4 5; do
    port=$(( 20000 + ($$ * 7 + try * 1031) % 25000 ))
    if out=$(lua5.4 bin/wecom-emulator start --dir "$DIR" --port "$port" $core_opt 2>&1); then
        started=yes
        break
    fi
done
[ -n "$started" ] || { echo "http bench: emulator did not start: $out" >&2; exit 1; }
eval "$out"

lua_run() { # runtime args...
    rt=$1; shift
    LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH="$BUILD/$rt/?.so;;" "$rt" bench/http_bench.lua "$@"
}

cc -O2 -o "$DIR/http_loop" bench/http_loop.c -lcurl
URL=$(lua_run lua5.4 url "$WECOM_BASE_URL" "$WECOM_CA_FILE")

# warm-up (nginx worker, JIT, TLS caches)
"$DIR/http_loop" "$URL" "$WECOM_CA_FILE" 200 >/dev/null
lua_run luajit keepalive "$URL" "$WECOM_CA_FILE" 200 >/dev/null

best() { # current candidate -> max
    awk -v a="$1" -v b="$2" 'BEGIN { print (b > a ? b : a) }'
}

c_loop=0; l54=0; ljit=0; fresh=0; noreuse=0
i=0
while [ "$i" -lt "$ROUNDS" ]; do
    c_loop=$(best "$c_loop" "$("$DIR/http_loop" "$URL" "$WECOM_CA_FILE" "$CALLS")")
    l54=$(best "$l54" "$(lua_run lua5.4 keepalive "$URL" "$WECOM_CA_FILE" "$CALLS")")
    ljit=$(best "$ljit" "$(lua_run luajit keepalive "$URL" "$WECOM_CA_FILE" "$CALLS")")
    fresh=$(best "$fresh" "$(lua_run lua5.4 new_session "$URL" "$WECOM_CA_FILE" "$FRESH_CALLS")")
    noreuse=$(best "$noreuse" "$(lua_run lua5.4 no_reuse "$URL" "$WECOM_CA_FILE" "$FRESH_CALLS")")
    i=$((i + 1))
done

awk -v c="$c_loop" -v l54="$l54" -v ljit="$ljit" -v fresh="$fresh" -v noreuse="$noreuse" \
    -v calls="$CALLS" -v rounds="$ROUNDS" 'BEGIN {
    printf "http: sequential GET /cgi-bin/agent/get, %d calls, best of %d rounds\n", calls, rounds
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
