#!/bin/sh
# Callback benchmark: verify + decrypt (+ parse) of the same N callback
# messages by
#   - wecom.core from Lua (crypter:open + xml_decode), lua5.4 and luajit
#   - Tencent's @wecom/crypto on node (getSignature compare + decrypt only)
#   - a plain C loop doing the same OpenSSL + expat work (the floor)
# and prints messages/second and the ratios of the bars in DESIGN.md.
#
# Assumes `make build` and `make node-deps` ran.  Environment:
#   BUILD (default build), N messages (20000), ROUNDS per run (5),
#   PASSES (3): every contestant runs PASSES times, interleaved, and its best
#   pass counts, so a noisy neighbour hurts no contestant more than another.
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${N:-20000}
ROUNDS=${ROUNDS:-5}
PASSES=${PASSES:-3}
CC=${CC:-cc}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

export LUA_PATH='lua/?.lua;lua/?/init.lua;;'
lua54() { LUA_CPATH="$BUILD/lua5.4/?.so;;" lua5.4 "$@"; }
luajit_() { LUA_CPATH="$BUILD/luajit/?.so;;" luajit "$@"; }

lua54 bench/callback_bench.lua gen "$tmp/messages.txt" "$N"
$CC -O2 -o "$tmp/callback_loop" bench/callback_loop.c -lcrypto -lexpat

best() {   # best <file>: highest rate among the "<rate> <checksum>" lines
    sort -n -r "$1" | head -n 1 | cut -d ' ' -f 1
}

pass=1
while [ "$pass" -le "$PASSES" ]; do
    "$tmp/callback_loop" "$tmp/messages.txt" "$ROUNDS" >> "$tmp/c.txt"
    lua54 bench/callback_bench.lua run "$tmp/messages.txt" "$ROUNDS" >> "$tmp/lua54.txt"
    luajit_ bench/callback_bench.lua run "$tmp/messages.txt" "$ROUNDS" >> "$tmp/luajit.txt"
    node bench/node_crypto_bench.js "$tmp/messages.txt" "$ROUNDS" >> "$tmp/node.txt"
    pass=$((pass + 1))
done

# Every contestant must have seen the same messages.
checksums=$(cat "$tmp/c.txt" "$tmp/lua54.txt" "$tmp/luajit.txt" | cut -d ' ' -f 2 | sort -u | wc -l)
if [ "$checksums" -ne 1 ]; then
    echo "callback bench: C and Lua runs disagree on the parsed messages" >&2
    exit 1
fi

c=$(best "$tmp/c.txt")
l54=$(best "$tmp/lua54.txt")
ljit=$(best "$tmp/luajit.txt")
node=$(best "$tmp/node.txt")

awk -v n="$N" -v c="$c" -v l54="$l54" -v ljit="$ljit" -v node="$node" 'BEGIN {
    printf "callback verify + decrypt + parse, %d messages (messages/s, best of the passes)\n", n
    printf "  %-44s %9d\n", "C loop (OpenSSL + expat), the floor", c
    printf "  %-44s %9d\n", "wecom.core, lua5.4", l54
    printf "  %-44s %9d\n", "wecom.core, luajit", ljit
    printf "  %-44s %9d\n", "node @wecom/crypto (verify + decrypt only)", node
    printf "ratios (bar: Lua/node >= 2.0, Lua/C >= 0.7)\n"
    printf "  lua5.4 / node %.2f   lua5.4 / C %.2f\n", l54 / node, l54 / c
    printf "  luajit / node %.2f   luajit / C %.2f\n", ljit / node, ljit / c
}'
