# Sourced by the bench scripts: starts a private emulator (extra launcher
# arguments in EMULATOR_ARGS), exports WECOM_BASE_URL / WECOM_CA_FILE and
# stops it on exit.  Needs `make build` (the emulator's push uses the LuaJIT core).
BUILD=${BUILD:-build}
EMULATOR_DIR=$(mktemp -d /tmp/wecom-bench.XXXXXX)
emulator_stop() {
    lua5.4 bin/wecom-emulator stop --dir "$EMULATOR_DIR" >/dev/null 2>&1 || true
    rm -rf "$EMULATOR_DIR"
}
trap emulator_stop EXIT INT TERM

emulator_start() {
    core_opt=""
    [ -f "$BUILD/luajit/wecom/core.so" ] && core_opt="--core-cpath $BUILD/luajit"
    for try in 1 2 3 4 5; do
        # below the ephemeral port range (32768-60999 on Linux)
        port=$(( 20000 + ($$ * 7 + try * 1031) % 12000 ))
        # shellcheck disable=SC2086
        if out=$(lua5.4 bin/wecom-emulator start --dir "$EMULATOR_DIR" --port "$port" \
                $core_opt ${EMULATOR_ARGS:-} 2>&1); then
            eval "$out"
            export WECOM_BASE_URL WECOM_CA_FILE
            return 0
        fi
    done
    echo "bench: the emulator did not start: $out" >&2
    return 1
}
