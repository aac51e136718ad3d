-- One process of a fleet (spec/integration/store_fleet_spec.lua): builds a
-- client on a shared store, says "ready", waits for the start file, makes N
-- calls and reports "ok=<n> failed=<n>[ err=<first error>]".
--
-- args: store_kind ("file" | "redis"), store_arg (directory | port),
--       redis_password, base_url, ca_file, corpid, agentid, calls, start_file
-- The app secret comes in the environment (WECOM_FLEET_SECRET), not argv.

local wecom = require "wecom"
local core = require "wecom.core"

local kind, store_arg, password, base_url, ca_file = arg[1], arg[2], arg[3], arg[4], arg[5]
local corpid, agentid, calls, start_file = arg[6], arg[7], arg[8], arg[9]

local store
if kind == "file" then
    store = wecom.store.file(store_arg)
else
    store = wecom.store.redis{ port = tonumber(store_arg), password = password ~= "" and password or nil }
end

local app = wecom.new{
    corpid = corpid, secret = assert(os.getenv("WECOM_FLEET_SECRET")), agentid = tonumber(agentid),
    base_url = base_url, ca_file = ca_file, store = store,
}

io.write("ready\n")
io.flush()
while true do
    local f = io.open(start_file)
    if f then f:close() break end
    core.sleep(0.001)
end

local ok, failed, first_err = 0, 0, nil
for _ = 1, tonumber(calls) do
    local data, err = app:get("/cgi-bin/agent/get", { agentid = app.agentid })
    if data and data.errcode == 0 then
        ok = ok + 1
    else
        failed = failed + 1
        first_err = first_err or tostring(err)
    end
end
io.write(string.format("ok=%d failed=%d%s\n", ok, failed, first_err and (" err=" .. first_err) or ""))
