-- Provider fan-out (DESIGN.md "What it must reach"): suite:each_corp over
-- every authorized corp, a corp token plus one API call each, cold, against
-- the emulator with a fixed latency.  The ideal is corps * 2 requests *
-- latency / concurrency; the bar is <= 1.3x the ideal and a peak RSS of at
-- most 64 MB.
--
--   provider_fanout.lua BASE_URL CA_FILE CODES_JSON [latency_ms] [concurrency]
--
-- The store is the memory one, filled from CODES_JSON (what
-- bench/provider_setup.lua wrote: the permanent codes a provider keeps) with
-- suite:set_permanent_code, as a process using the memory store does at start.

local wecom = require "wecom"
local core = require "wecom.core"
local cjson = require "cjson"

local base_url, ca_file, codes_file = arg[1], arg[2], arg[3]
local latency_ms = tonumber(arg[4]) or 20
local concurrency = tonumber(arg[5]) or 64
local MAX_RSS = 64 * 1024 * 1024

local control = dofile(arg[0]:match("^(.-)[^/]*$") .. "bench_util.lua").control(base_url, ca_file, 30)

local function peak_rss()
    local f = io.open("/proc/self/status")
    local s = f and f:read("*a") or ""
    if f then f:close() end
    return (tonumber(s:match("VmHWM:%s*(%d+) kB")) or 0) * 1024
end

-- (the suite's settings come with the codes: the emulator's fixture of
-- 10,000 corps would weigh more than the whole fan-out)
local f = assert(io.open(codes_file, "rb"))
local saved = cjson.decode(f:read("*a"))
f:close()
local def = saved.suite
local suite = wecom.suite {
    suite_id = def.suite_id, suite_secret = def.suite_secret, token = def.token,
    aes_key = def.aes_key, base_url = base_url, ca_file = ca_file, timeout = 10,
}
local ticket = control("POST", "suite_ticket", { suite_id = def.suite_id })
assert(suite:receive(ticket.query, ticket.body))
for _, c in ipairs(saved.corps) do
    assert(suite:set_permanent_code(c.corpid, c.permanent_code, c.agentid))
end
saved = nil   -- luacheck: ignore 311
assert(suite:token())                  -- the suite token is not part of the fan-out

control("POST", "latency", { ms = latency_ms })
local before = control("GET", "stats").calls
local started = core.monotonic()
local results = suite:each_corp(function(client, corp)
    assert(client:token())
    assert(client:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
    return true
end, { concurrency = concurrency })
local elapsed = core.monotonic() - started
control("POST", "latency", { ms = 0 })
local after = control("GET", "stats").calls

local corps, failed, first = #results, 0, nil
for _, r in ipairs(results) do
    if not r.ok then
        failed = failed + 1
        first = first or tostring(r.err)
    end
end
local tokens = (after["/cgi-bin/service/get_corp_token"] or 0) - (before["/cgi-bin/service/get_corp_token"] or 0)
local ideal = corps * 2 * latency_ms / 1000 / concurrency
local rss = peak_rss()
local ok = failed == 0 and tokens == corps and elapsed <= 1.3 * ideal and rss <= MAX_RSS
io.write(("provider fanout: %d corps, %d ms latency, concurrency %d: %.2f s (ideal %.2f s, %.2fx; bar <= 1.3x),"
    .. " %d get_corp_token, peak RSS %.1f MB (bar <= 64) %s\n"):format(corps, latency_ms, concurrency, elapsed,
    ideal, elapsed / ideal, tokens, rss / 1048576, ok and "ok" or "MISSED"))
if failed > 0 then
    io.write(("provider fanout: %d of %d corps failed, first: %s\n"):format(failed, corps, first))
end
os.exit(ok and 0 or 1)
