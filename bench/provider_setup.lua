-- Sets a provider up on the emulator for bench/provider_*.lua: a ticket, the
-- fixture's third-party suite installed in the upstream corp and shared to
-- CORPS downstream corps, every event (create_auth each) through
-- suite:receive (concurrently), into the given store.
--
--   setup.lua BASE_URL CA_FILE STORE_KIND STORE_ARG CORPS [CODES_JSON]
--     STORE_KIND file (STORE_ARG: a directory) | redis (STORE_ARG: port)
--     CODES_JSON: also write {suite = {suite_id, suite_secret, token, aes_key},
--     corps = [{corpid, permanent_code, agentid}]} there: what a provider
--     keeps in its own database when its store is the memory one
-- The store is left cold: no suite token, no corp token.
-- Prints "setup: <n> corps installed in <s> s".

local wecom = require "wecom"
local core = require "wecom.core"
local cjson = require "cjson"

local base_url, ca_file, kind, store_arg = arg[1], arg[2], arg[3], arg[4]
local corps, codes_file = tonumber(arg[5]), arg[6]

local control = dofile(arg[0]:match("^(.-)[^/]*$") .. "bench_util.lua").control(base_url, ca_file, 120)

control("POST", "reset", {})
local fx = control("GET", "fixture")
local def
for _, s in ipairs(fx.provider.suites) do
    if not s.customized then def = s end
end
local store = kind == "file" and wecom.store.file(store_arg, { fsync = false })
    or wecom.store.redis { port = tonumber(store_arg) }
local suite = wecom.suite {
    suite_id = def.suite_id, suite_secret = def.suite_secret, token = def.callback.token,
    aes_key = def.callback.aes_key, base_url = base_url, ca_file = ca_file, store = store, timeout = 30,
}

local started = core.monotonic()
local function receive(ev)
    local event, err = suite:receive(ev.query, ev.body)
    assert(event, tostring(err))
    return event
end
receive(control("POST", "suite_ticket", { suite_id = def.suite_id }))
local up = fx.upstream.corpid
receive(control("POST", "authorize", { suite_id = def.suite_id, corpid = up, action = "create" }))
local to = {}
for _, c in ipairs(fx.provider.corps) do
    if c.corpid ~= up and #to < corps then
        to[#to + 1] = c.corpid
    end
end
assert(#to == corps, "the emulator has only " .. #to .. " corps to share to (start it with --corps N)")
-- shared in chunks: the emulator answers with every event it would post
local CHUNK = 500
for first = 1, #to, CHUNK do
    local part = {}
    for i = first, math.min(first + CHUNK - 1, #to) do
        part[#part + 1] = to[i]
    end
    local shared = control("POST", "share", { suite_id = def.suite_id, corpid = up, to = part })
    local tasks = {}
    for _, ev in ipairs(shared.events) do
        tasks[#tasks + 1] = function() return receive(ev) end
    end
    for _, r in ipairs(wecom.parallel(tasks, { concurrency = 32 })) do
        assert(r.ok, tostring(r.err))
    end
end

local n = 0
local codes = {}
for corp in suite:corps() do
    n = n + 1
    if codes_file then
        local rec = assert(require("wecom.suite.records").corp(store, suite._ns, corp.corpid))
        codes[#codes + 1] = { corpid = corp.corpid, permanent_code = rec.permanent_code, agentid = corp.agentid }
    end
end
if codes_file then
    local f = assert(io.open(codes_file, "wb"))
    f:write(cjson.encode { suite = { suite_id = def.suite_id, suite_secret = def.suite_secret,
        token = def.callback.token, aes_key = def.callback.aes_key }, corps = codes })
    f:close()
end
-- cold: no suite token left (no corp token was fetched)
local records = require "wecom.suite.records"
assert(records.delete(store, records.token_key(suite._ns)))
io.write(("setup: %d corps installed in %.1f s\n"):format(n, core.monotonic() - started))
