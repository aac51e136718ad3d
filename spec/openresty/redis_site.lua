-- The nginx side of spec/openresty/redis_store_spec.lua: an app whose
-- token store is wecom.store.redis, built in init_by_lua from the
-- environment (so the password never lands in the conf file).
--
-- init()         init_by_lua: the store and the app
-- chains()       content: one API call (GET corp/get_chain_list) -> JSON
-- store_reads()  content: n store reads in a row -> their errors
-- pause_probe()  content: a store read while Redis holds every client
--                (CLIENT PAUSE, sent first on a connection of its own); a
--                light thread ticks meanwhile, which it can only do if the
--                read yields to nginx

local cjson = require "cjson.safe"
local core = require "wecom.core"
local wecom = require "wecom"

-- luacheck: globals ngx
local ngx = ngx

local _M = {}

local app, store

local function env(name)
    local v = os.getenv(name)
    if v == nil or v == "" then
        error("redis_site: environment variable " .. name .. " is not set", 0)
    end
    return v
end

local function send_json(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(value))
end

function _M.init()
    store = wecom.store.redis {
        host = "127.0.0.1",
        port = tonumber(env("SPEC_REDIS_PORT")),
        password = env("SPEC_REDIS_PASSWORD"),
        db = tonumber(env("SPEC_REDIS_DB")),
        prefix = env("SPEC_REDIS_PREFIX"),
        timeout = 2,
    }
    app = wecom.new {
        corpid = env("SPEC_CORPID"),
        secret = env("SPEC_SECRET"),
        agentid = tonumber(env("SPEC_AGENTID")),
        base_url = env("SPEC_BASE_URL"),
        store = store,
        retries = 0,
    }
end

function _M.chains()
    local chains, err = app.chain:list()
    if not chains then
        -- tostring(err) names kind and path, never a token or secret
        return send_json(500, { error = err.kind, message = tostring(err) })
    end
    return send_json(200, { count = #chains, worker = ngx.worker.pid() })
end

function _M.store_reads()
    local errs = {}
    for i = 1, tonumber(ngx.var.arg_n) do
        local value, err = store:get(ngx.var.arg_key)
        errs[i] = value == nil and err ~= nil and tostring(err) or "no error"
    end
    return send_json(200, { errors = errs })
end

function _M.pause_probe()
    -- Redis answers the PAUSE at once and from then on holds every other
    -- command, so the read below waits for the pause whatever its timing.
    -- (A blocking connection here is fine: the reply is immediate.)
    local pauser = assert(core.redis_connect {
        host = "127.0.0.1", port = tonumber(env("SPEC_REDIS_PORT")),
        password = env("SPEC_REDIS_PASSWORD"), timeout = 1,
    })
    assert(pauser:command("CLIENT", "PAUSE", ngx.var.arg_ms, "ALL") == "OK")
    pauser:close()

    local ticks, running = 0, true
    local ticker = ngx.thread.spawn(function()
        while running do
            ngx.sleep(0.01)
            ticks = ticks + 1
        end
    end)
    local before = ticks
    ngx.update_time()
    local t0 = ngx.now()
    -- store:get -> value, expires_at | nil | nil, err
    local value, second = store:get(ngx.var.arg_key)
    local ticks_while_reading = ticks - before
    ngx.update_time()
    local waited = ngx.now() - t0
    running = false
    ngx.thread.wait(ticker)
    return send_json(200, {
        value = value,
        err = value == nil and second ~= nil and tostring(second) or nil,
        ticks_while_reading = ticks_while_reading,
        waited = waited,
    })
end

return _M
