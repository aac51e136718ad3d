-- Fan-out over every shared corp: a downstream token plus one API call per
-- corp, through app:each_shared_corp, against the emulator with a fixed
-- per-request latency.  The ideal is (corps * 2 requests * latency) /
-- concurrency; the bar is <= 2x the ideal.
--
--   lua5.4 bench/fanout.lua BASE_URL CA_FILE [latency_ms] [concurrency]

local wecom = require "wecom"
local core = require "wecom.core"

local base_url, ca_file = arg[1], arg[2]
local latency_ms = tonumber(arg[3]) or 20
local concurrency = tonumber(arg[4]) or 32

local control = dofile(arg[0]:match("^(.-)[^/]*$") .. "bench_util.lua").control(base_url, ca_file, 30)

local fixture = control("GET", "fixture")
local system_app
for _, a in ipairs(fixture.upstream.apps) do
    if a.system then system_app = a end
end

local app = wecom.new {
    corpid = fixture.upstream.corpid, secret = system_app.secret, agentid = system_app.agentid,
    base_url = base_url, ca_file = ca_file, timeout = 10,
}
assert(app:token())                       -- the upstream token is not part of the fan-out
local corps = 0
for _ in app:shared_corps { business_type = 1 } do corps = corps + 1 end

control("POST", "latency", { ms = latency_ms })
local started = core.monotonic()
local results = app:each_shared_corp(function(down, corp)
    assert(down:token())
    return assert(down:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
end, { business_type = 1, concurrency = concurrency })
local elapsed = core.monotonic() - started
control("POST", "latency", { ms = 0 })

local failed = 0
for _, r in ipairs(results) do
    if not r.ok then failed = failed + 1 end
end
local ideal = corps * 2 * latency_ms / 1000 / concurrency
io.write(("fanout: %d corps, %d ms latency, concurrency %d: %.2f s (ideal %.2f s, %.2fx ideal; bar <= 2x) %s\n")
    :format(corps, latency_ms, concurrency, elapsed, ideal, elapsed / ideal,
        (failed == 0 and elapsed <= 2 * ideal) and "ok" or "MISSED"))
if failed > 0 then
    io.write(("fanout: %d of %d corps failed\n"):format(failed, #results))
end
os.exit((failed == 0 and elapsed <= 2 * ideal) and 0 or 1)
