-- The client's share of the provider fan-out, without the network: suite:each_corp
-- over N authorized corps (a corp token and one agent/get each, as
-- bench/provider_fanout.lua does) against a transport that answers at once
-- with the emulator's answers.  What it measures is the Lua path of a request
-- (client.lua, wecom.url, wecom.retry, wecom.json, wecom.token, the suite's
-- records and corp clients) and wecom.parallel's bookkeeping; run it under
-- valgrind --tool=callgrind for instruction counts (two values of N: the
-- difference / the corps between them is the cost of one corp).
--
--   provider_cpu.lua [corps (1000)] [repeat (1)] [setup]
-- ("setup": everything but the fan-out, to subtract from a full run's count)
-- Prints the CPU seconds per corp (os.clock) of the fan-out.

local wecom = require "wecom"

local corps = tonumber(arg[1]) or 1000
local rounds = tonumber(arg[2]) or 1
local setup_only = arg[3] == "setup"

local TOKEN = ("T"):rep(96)
local HEADERS = { ["content-type"] = "application/json; charset=UTF-8", ["content-length"] = "0",
                  connection = "keep-alive", server = "nginx/1.22.1", date = "Sat, 05 Dec 2026 15:23:42 GMT" }

local ANSWERS = {
    ["/cgi-bin/service/get_suite_token"] = '{"expires_in":7200,"suite_access_token":"' .. TOKEN .. '"}',
    ["/cgi-bin/service/get_corp_token"] = '{"access_token":"' .. TOKEN .. '","expires_in":7168}',
    ["/cgi-bin/agent/get"] = '{"agentid":2000507,"allow_partys":{"partyid":[1]},"allow_tags":{"tagid":[]},'
        .. '"allow_userinfos":{"user":[{"userid":"user506"}]},"close":0,"customized_publish_status":1,'
        .. '"description":"","errcode":0,"errmsg":"ok","home_url":"","isreportenter":0,"name":"云帆订货通",'
        .. '"redirect_domain":"orders.yunfan.example.com","report_location_flag":0,"square_logo_url":""}',
}

-- answers as the curl transport does: a fresh response table each time
local canned = {}
function canned.request(_, req)
    local path = req.url:match("^https://[^/]+(/[^?]*)")
    local body = ANSWERS[path]
    local headers = {}
    for k, v in pairs(HEADERS) do
        headers[k] = v
    end
    headers["content-length"] = tostring(#body)
    return { status = 200, headers = headers, body = body }
end

local function run(round)
    -- a suite of its own each round: the memory store is process-wide, and
    -- every round starts cold
    local suite = wecom.suite {
        suite_id = "wwSUITECPU" .. round, suite_secret = "secret", base_url = "https://emulator.invalid",
        store = wecom.store.memory(),
    }
    suite.transport, suite._api.transport = canned, canned
    assert(suite:set_ticket("ticket"))
    for i = 1, corps do
        assert(suite:set_permanent_code(("wwGEN%06d"):format(i), ("P"):rep(43), 2000000 + i))
    end
    assert(suite:token())
    if setup_only then
        return 0
    end
    local started = os.clock()
    local results = suite:each_corp(function(client, corp)
        assert(client:token())
        assert(client:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
        return true
    end, { concurrency = 64 })
    local spent = os.clock() - started
    for _, r in ipairs(results) do
        assert(r.ok, tostring(r.err))
    end
    return spent
end

local total = 0
for round = 1, rounds do
    total = total + run(round)
end
io.write(("provider cpu: %d corps x %d: %.1f us of CPU per corp (a corp token and a call)\n")
    :format(corps, rounds, total / rounds / corps * 1e6))
