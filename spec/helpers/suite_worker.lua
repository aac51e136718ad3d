-- One process of a provider's fleet (spec/integration/suite_store_spec.lua,
-- bench/provider_fleet.lua): a wecom.suite on a shared file or Redis store.
--
-- args: mode, store_kind ("file" | "redis"), store_arg (directory | port),
--       redis_password, base_url, ca_file, suite_id, then per mode:
--   receive FILE     hands each { query, body } of the JSON list in FILE to
--                    suite:receive; prints "ok <type>" or "fail <err>" each
--   use CORPID       prints "ok <agentid> <corps>": the corp's client calls
--                    agent/get; corps: how many corps suite:corps() lists
--   fleet START_FILE [CONCURRENCY]
--                    says "ready", waits for START_FILE, then each_corp with
--                    one agent/get per corp; prints "ok=<n> failed=<n>[ err=...]"
-- The suite's secret and callback settings come in the environment
-- (WECOM_SUITE_SECRET, WECOM_SUITE_TOKEN, WECOM_SUITE_AES_KEY), not argv.

local wecom = require "wecom"
local json = require "wecom.json"
local worker = require "helpers.worker"

local mode, kind, store_arg, password, base_url, ca_file, suite_id = arg[1], arg[2], arg[3], arg[4],
    arg[5], arg[6], arg[7]

local store = worker.store(kind, store_arg, password)

local suite = wecom.suite {
    suite_id = suite_id, suite_secret = assert(os.getenv("WECOM_SUITE_SECRET")),
    token = os.getenv("WECOM_SUITE_TOKEN"), aes_key = os.getenv("WECOM_SUITE_AES_KEY"),
    base_url = base_url, ca_file = ca_file, store = store,
}

if mode == "receive" then
    local f = assert(io.open(arg[8], "rb"))
    local events = assert(json.decode(f:read("*a")))
    f:close()
    for _, ev in ipairs(events) do
        local event, err = suite:receive(ev.query, ev.body)
        io.write(event and ("ok " .. event.type) or ("fail " .. tostring(err)), "\n")
    end
elseif mode == "use" then
    local corp, err = suite:corp(arg[8])
    local data = corp and corp:get("/cgi-bin/agent/get", { agentid = corp.agentid })
    if not data then
        io.write("fail ", tostring(err or select(2, corp:get("/cgi-bin/agent/get", { agentid = corp.agentid }))), "\n")
    else
        local n = 0
        for _ in suite:corps() do
            n = n + 1
        end
        io.write(("ok %d %d\n"):format(data.agentid, n))
    end
elseif mode == "fleet" then
    worker.ready_then_wait(arg[8])
    local results = suite:each_corp(function(client, corp)
        return client:get("/cgi-bin/agent/get", { agentid = corp.agentid })
    end, { concurrency = tonumber(arg[9] or "16") })
    local tally = worker.tally()
    for _, r in ipairs(results) do
        tally.add(r.ok, r.err)
    end
    io.write(tally.line())
end
