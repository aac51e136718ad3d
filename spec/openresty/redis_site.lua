-- The nginx side of spec/openresty/redis_store_spec.lua: an app whose
-- token store is wecom.store.redis, built in init_by_lua from the
-- environment (so the password never lands in the conf file), and apps on
-- wecom.store.shdict.
--
-- init()         init_by_lua: the stores and the apps
-- chains()       content: one API call (GET corp/get_chain_list) -> JSON
-- store_reads()  content: n store reads in a row -> their errors
-- pause_probe()  content: a store read while Redis holds every client
--                (CLIENT PAUSE, sent first on a connection of its own); a
--                light thread ticks meanwhile, which it can only do if the
--                read yields to nginx
--
-- On wecom.store.shdict (lua_shared_dict "contract"):
-- contract()     content: runs one case of the store contract
--                (spec/helpers/store_contract.lua): ?case=<name> ->
--                {"ok":true} | {"ok":false,"err":"..."}
-- shdict_call()  content: one API call (GET agent/get) -> JSON with its time
-- hold_lock()    content: takes the app token's lock with a long lease and
--                never releases it (a worker that died holding it)
-- storm()        content: ?n= light threads make one call each with a second
--                app on the same store, whose rejections (?errcode=) come
--                back late, the k-th after 0.2 + k * 0.01 s -> {ok=, failed=}

local core = require "wecom.core"
local wecom = require "wecom"
local contract = require "helpers.store_contract"
local staggered = require "helpers.staggered"

-- luacheck: globals ngx
local ngx = ngx

local _M = {}

local app, store
local DICT = "contract"
local shdict_app, storm_app

local cases = require "ngx_cases"
local send_json = cases.send_json

local function env(name)
    return cases.need_env("redis_site", name)
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
    shdict_app = _M.shdict_app()
    storm_app = _M.shdict_app()
end

function _M.shdict_app()
    return wecom.new {
        corpid = env("SPEC_CORPID"),
        secret = env("SPEC_SECRET"),
        agentid = tonumber(env("SPEC_AGENTID")),
        base_url = env("SPEC_BASE_URL"),
        store = wecom.store.shdict(DICT),
        retries = 0,
        timeout = 1,
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

local ctx = {
    name = "shdict",
    new = function() return wecom.store.shdict(DICT) end,
    raw = function(key, expires_text, value)
        return ngx.shared[DICT]:set(key, expires_text .. "|" .. value) == true
    end,
    raw_text = function(key, text)
        assert(ngx.shared[DICT]:set(key, text))
    end,
    sleep = ngx.sleep,
    fill = 100000,     -- far more than the 1m zone holds
}

function _M.contract()
    local ok, err = pcall(contract.run, ctx, ngx.unescape_uri(ngx.var.arg_case))
    return send_json(200, { ok = ok, err = not ok and tostring(err) or nil })
end

function _M.shdict_call()
    local started = core.monotonic()
    local data, err = shdict_app:get("/cgi-bin/agent/get", { agentid = shdict_app.agentid })
    if not data then
        return send_json(500, { error = err.kind, message = tostring(err) })
    end
    return send_json(200, { agentid = data.agentid, took = core.monotonic() - started })
end

function _M.hold_lock()
    -- another store object: the lock is not this request's to release
    local ok = wecom.store.shdict(DICT):lock(shdict_app.token_key, 600)
    shdict_app.store:delete(shdict_app.token_key)
    return send_json(200, { locked = ok })
end

function _M.storm()
    local n, errcode = tonumber(ngx.var.arg_n), ngx.var.arg_errcode
    local real = storm_app.transport
    storm_app.transport = staggered.wrap(real, "/cgi-bin/agent/get", errcode)
    local tasks = {}
    for i = 1, n do
        tasks[i] = function()
            return storm_app:get("/cgi-bin/agent/get", { agentid = storm_app.agentid })
        end
    end
    local results = wecom.parallel(tasks, { concurrency = n })
    storm_app.transport = real
    local ok, failed = 0, {}
    for _, r in ipairs(results) do
        if r.ok then
            ok = ok + 1
        else
            failed[#failed + 1] = tostring(r.err)
        end
    end
    return send_json(200, { ok = ok, failed = failed })
end

return _M
