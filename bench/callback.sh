#!/bin/sh
# Callback benchmark: verify + decrypt + parse of the same N callback
# messages by
#   - wecom.callback's cb:decrypt(query, body) (the public path: query
#     table + XML envelope in, event out), lua5.4 and luajit: the headline
#   - wecom.core's c:open + xml_decode on the four strings (secondary line)
#   - Tencent's @wecom/crypto on node (getSignature compare + decrypt only)
#   - a plain C loop doing the same OpenSSL + expat work (the floor)
# then RSS growth over many cb:decrypt calls (bench/memory.lua).  Prints
# messages/second and the ratios of the bars in DESIGN.md; exits non-zero
# when a bar is missed (the speed bars apply to lua5.4; luajit is reported).
#
# Assumes `make build` and `make node-deps` ran.  Environment:
#   BUILD (default build), N messages (20000), ROUNDS per run (5),
#   PASSES (3): every contestant runs PASSES times, interleaved, and its best
#     pass counts, so a noisy neighbour hurts no contestant more than another;
#   LUAJIT_PROCS (3): luajit processes per pass; LuaJIT's string hashing
#     makes its rate differ from process to process, so the median of all
#     its runs is reported;
#   MEMORY_CALLS (1000000): cb:decrypt calls for the memory bar (0 skips it).
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${N:-20000}
ROUNDS=${ROUNDS:-5}
PASSES=${PASSES:-3}
LUAJIT_PROCS=${LUAJIT_PROCS:-3}
MEMORY_CALLS=${MEMORY_CALLS:-1000000}
CC=${CC:-cc}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

export LUA_PATH='lua/?.lua;lua/?/init.lua;;'
lua54() { LUA_CPATH="$BUILD/lua5.4/?.so;;" lua5.4 "$@"; }
luajit_() { LUA_CPATH="$BUILD/luajit/?.so;;" luajit "$@"; }

lua54 bench/callback_bench.lua gen "$tmp/messages.txt" "$N"
$CC -O2 -o "$tmp/callback_loop" bench/callback_loop.c -lcrypto -lexpat

# column <file> <n>: the n-th field of every line
column() { cut -d ' ' -f "$2" "$1"; }
best() { sort -n -r | head -n 1; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

pass=1
while [ "$pass" -le "$PASSES" ]; do
    "$tmp/callback_loop" "$tmp/messages.txt" "$ROUNDS" >> "$tmp/c.txt"
    lua54 bench/callback_bench.lua run "$tmp/messages.txt" "$ROUNDS" >> "$tmp/lua54.txt"
    node bench/node_crypto_bench.js "$tmp/messages.txt" "$ROUNDS" >> "$tmp/node.txt"
    proc=1
    while [ "$proc" -le "$LUAJIT_PROCS" ]; do
        luajit_ bench/callback_bench.lua run "$tmp/messages.txt" "$ROUNDS" >> "$tmp/luajit.txt"
        proc=$((proc + 1))
    done
    pass=$((pass + 1))
done

# Every contestant must have seen the same messages: the C loop and both
# Lua paths sum the MsgType lengths they parsed.
sums=$( (column "$tmp/c.txt" 2; column "$tmp/lua54.txt" 3; column "$tmp/luajit.txt" 3) | sort -u | wc -l)
if [ "$sums" -ne 1 ]; then
    echo "callback bench: C and Lua runs disagree on the parsed messages" >&2
    exit 1
fi

c=$(column "$tmp/c.txt" 1 | best)
node=$(column "$tmp/node.txt" 1 | best)
pub54=$(column "$tmp/lua54.txt" 1 | best)
core54=$(column "$tmp/lua54.txt" 2 | best)
pubjit=$(column "$tmp/luajit.txt" 1 | median)
corejit=$(column "$tmp/luajit.txt" 2 | median)
jitruns=$(column "$tmp/luajit.txt" 1 | sort -n | tr '\n' ' ')

mem54=skipped
memjit=skipped
if [ "$MEMORY_CALLS" -gt 0 ]; then
    mem54=$(lua54 bench/memory.lua "$MEMORY_CALLS" | cut -d ' ' -f 1)
    memjit=$(luajit_ bench/memory.lua "$MEMORY_CALLS" | cut -d ' ' -f 1)
fi

awk -v n="$N" -v c="$c" -v node="$node" -v pub54="$pub54" -v core54="$core54" \
    -v pubjit="$pubjit" -v corejit="$corejit" -v jitruns="$jitruns" \
    -v mem54="$mem54" -v memjit="$memjit" -v calls="$MEMORY_CALLS" 'BEGIN {
    printf "callback verify + decrypt + parse, %d messages (messages/s; best of the passes, luajit: median)\n", n
    printf "  %-52s %9d\n", "C loop (OpenSSL + expat), the floor", c
    printf "  %-52s %9d\n", "node @wecom/crypto (verify + decrypt only)", node
    printf "  %-52s %9d\n", "cb:decrypt(query, body), lua5.4", pub54
    printf "  %-52s %9d\n", "cb:decrypt(query, body), luajit", pubjit
    printf "  %-52s %9d\n", "core c:open + xml_decode, lua5.4", core54
    printf "  %-52s %9d\n", "core c:open + xml_decode, luajit", corejit
    printf "  luajit cb:decrypt per process: %s\n", jitruns
    printf "ratios (bars for lua5.4 cb:decrypt: / node >= 2.0, / C >= 0.7)\n"
    printf "  cb:decrypt lua5.4 / node %.2f   / C %.2f\n", pub54 / node, pub54 / c
    printf "  cb:decrypt luajit / node %.2f   / C %.2f\n", pubjit / node, pubjit / c
    printf "  core lua5.4 / node %.2f   / C %.2f\n", core54 / node, core54 / c
    printf "  core luajit / node %.2f   / C %.2f\n", corejit / node, corejit / c
    status = 0
    if (pub54 / node < 2.0) { print "MISSED: lua5.4 cb:decrypt < 2.0x node"; status = 1 }
    if (pub54 / c < 0.7) { print "MISSED: lua5.4 cb:decrypt < 0.7x the C loop"; status = 1 }
    if (mem54 != "skipped") {
        printf "memory: RSS growth over %d cb:decrypt calls (bar < 2048 KiB): lua5.4 %d KiB, luajit %d KiB\n",
            calls, mem54, memjit
        if (mem54 >= 2048 || memjit >= 2048) { print "MISSED: RSS growth >= 2 MiB"; status = 1 }
    }
    exit status
}'
