-- Provider fleet (DESIGN.md "What it must reach"): 8 processes sharing a
-- cold file store, then a cold Redis store, over 1,000 authorized corps;
-- each runs suite:each_corp with one API call per corp.  The bar: exactly 1
-- get_suite_token and exactly 1 get_corp_token per corp at the emulator.
--
--   provider_fleet.lua BASE_URL CA_FILE [corps] [processes]
--
-- Needs LUA_PATH to reach spec/ (the worker is spec/helpers/suite_worker.lua,
-- the Redis server spec/helpers/redis.lua) and redis-server on PATH.

local core = require "wecom.core"
local redis = require "helpers.redis"

local base_url, ca_file = arg[1], arg[2]
local corps = tonumber(arg[3]) or 1000
local processes = tonumber(arg[4]) or 8
local lua = arg[-1]

local control = dofile(arg[0]:match("^(.-)[^/]*$") .. "bench_util.lua").control(base_url, ca_file, 120)

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function shell(args)
    local parts = {}
    for i, a in ipairs(args) do
        parts[i] = quote(a)
    end
    return table.concat(parts, " ")
end

local fx = control("GET", "fixture")
local def
for _, s in ipairs(fx.provider.suites) do
    if not s.customized then def = s end
end

local function run(kind, store_arg, password)
    assert(os.execute(shell { lua, "bench/provider_setup.lua", base_url, ca_file, kind, store_arg, corps }))
    local before = control("GET", "stats").calls
    local start_file = os.tmpname()
    os.remove(start_file)
    local env = ("WECOM_SUITE_SECRET=%s WECOM_SUITE_TOKEN=%s WECOM_SUITE_AES_KEY=%s "):format(
        quote(def.suite_secret), quote(def.callback.token), quote(def.callback.aes_key))
    local kids = {}
    for i = 1, processes do
        kids[i] = assert(io.popen(env .. shell { lua, "spec/helpers/suite_worker.lua", "fleet", kind, store_arg,
            password or "", base_url, ca_file, def.suite_id, start_file, 16 } .. " 2>&1", "r"))
    end
    for i = 1, processes do
        local line = kids[i]:read("*l")
        assert(line == "ready", "worker " .. i .. ": " .. tostring(line))
    end
    -- the first suite token is slow: every process arrives while it is in flight
    control("POST", "faults", { path = "/cgi-bin/service/get_suite_token", count = 1, delay_ms = 300 })
    local started = core.monotonic()
    assert(io.open(start_file, "w")):close()
    local failed = 0
    for i = 1, processes do
        local out = kids[i]:read("*a")
        kids[i]:close()
        if not out:match("^ok=%d+ failed=0") then
            failed = failed + 1
            io.write("worker ", i, ": ", out)
        end
    end
    local elapsed = core.monotonic() - started
    os.remove(start_file)
    local after = control("GET", "stats").calls
    local function delta(path)
        return (after[path] or 0) - (before[path] or 0)
    end
    local suite_tokens = delta("/cgi-bin/service/get_suite_token")
    local corp_tokens = delta("/cgi-bin/service/get_corp_token")
    local authorized = corps + 1    -- the upstream corp and the corps it shared the app to
    local ok = failed == 0 and suite_tokens == 1 and corp_tokens == authorized
    io.write(("provider fleet (%s store): %d processes x %d corps in %.2f s: %d get_suite_token (bar 1),"
        .. " %d get_corp_token (bar %d) %s\n"):format(kind, processes, authorized, elapsed, suite_tokens,
        corp_tokens, authorized, ok and "ok" or "MISSED"))
    return ok
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -m 700 " .. quote(dir)))
local ok = run("file", dir)
os.execute("rm -rf " .. quote(dir))

local srv = redis.start {}
ok = run("redis", tostring(srv.port)) and ok
srv:destroy()
os.exit(ok and 0 or 1)
