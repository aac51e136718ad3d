-- One process of a fleet (spec/integration/store_fleet_spec.lua): builds a
-- client on a shared store, says "ready", waits for the start file, makes N
-- calls and reports "ok=<n> failed=<n>[ err=<first error>]".
--
-- args: store_kind ("file" | "redis"), store_arg (directory | port),
--       redis_password, base_url, ca_file, corpid, agentid, calls, start_file
-- The app secret comes in the environment (WECOM_FLEET_SECRET), not argv.

local wecom = require "wecom"
local worker = require "helpers.worker"

local kind, store_arg, password, base_url, ca_file = arg[1], arg[2], arg[3], arg[4], arg[5]
local corpid, agentid, calls, start_file = arg[6], arg[7], arg[8], arg[9]

local store = worker.store(kind, store_arg, password)

local app = wecom.new{
    corpid = corpid, secret = assert(os.getenv("WECOM_FLEET_SECRET")), agentid = tonumber(agentid),
    base_url = base_url, ca_file = ca_file, store = store,
}

worker.ready_then_wait(start_file)

local tally = worker.tally()
for _ = 1, tonumber(calls) do
    local data, err = app:get("/cgi-bin/agent/get", { agentid = app.agentid })
    tally.add(data and data.errcode == 0, err)
end
io.write(tally.line())
