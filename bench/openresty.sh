#!/bin/sh
# OpenResty bars (see bench/openresty.lua).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH="$BUILD/lua5.4/?.so;;" lua5.4 bench/openresty.lua
