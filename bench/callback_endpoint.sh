#!/bin/sh
# Callback endpoint benchmark (see bench/callback_endpoint.lua): the handler
# in one nginx worker against a no-op handler and a Node.js server, under
# wrk.  Assumes `make build` and `make node-deps` ran, and wrk is installed.
# Environment: BUILD (default build), N messages (1000), PASSES, DURATION,
# CONNECTIONS (bench/callback_endpoint.lua).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${N:-1000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
export LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;'
export LUA_CPATH="$BUILD/lua5.4/?.so;;"
lua5.4 bench/callback_bench.lua gen "$tmp/messages.txt" "$N"
lua5.4 bench/callback_endpoint.lua "$tmp/messages.txt"
