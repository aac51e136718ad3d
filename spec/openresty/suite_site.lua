-- The nginx side of spec/openresty/suite_handler_spec.lua: a suite whose
-- store is the shdict "wecom" (shared by the workers), built in
-- init_by_lua from the environment (the secrets stay out of the conf).
--
--   /suite    wecom.ngx.callback_handler{ suite = suite, router = router }
--   /corp     ?corpid=X: the corp's client calls agent/get -> JSON
--   /seen     what the router saw, by event type (JSON)

-- luacheck: globals ngx
local ngx = ngx
local cjson = require "cjson.safe"
local wecom = require "wecom"

local _M = {}

local suite, router, handler

local cases = require "ngx_cases"
local send_json = cases.send_json

local function env(name)
    return cases.need_env("suite_site", name)
end

local function seen(event, what)
    local results = ngx.shared.results
    results:incr("n:" .. event.type, 1, 0)
    results:set("last:" .. event.type, cjson.encode(what))
end

function _M.init()
    suite = wecom.suite {
        suite_id = env("SPEC_SUITE_ID"), suite_secret = env("SPEC_SUITE_SECRET"),
        token = env("SPEC_SUITE_TOKEN"), aes_key = env("SPEC_SUITE_AES_KEY"),
        provider_corpid = env("SPEC_PROVIDER_CORPID"),
        base_url = env("SPEC_BASE_URL"), store = wecom.store.shdict("wecom"), retries = 0,
    }
    router = wecom.callback.router()
    router:on("create_auth", function(event)
        -- the bookkeeping is done: the authorization is here
        seen(event, { corpid = event.auth and event.auth.corpid, agentid = event.auth and event.auth.agentid,
            has_code = event.auth and type(event.auth.permanent_code) == "string" })
    end)
    router:default(function(event)
        seen(event, { corpid = event.corpid })
    end)
end

function _M.handle()
    handler = handler or wecom.ngx.callback_handler { suite = suite, router = router }
    return handler()
end

function _M.corp()
    local corpid = ngx.var.arg_corpid
    local corp, err = suite:corp(corpid)
    if not corp then
        return send_json(404, { kind = err.kind, err = tostring(err) })
    end
    local data, cerr = corp:get("/cgi-bin/agent/get", { agentid = corp.agentid })
    if not data then
        return send_json(502, { kind = cerr.kind, err = tostring(cerr) })
    end
    return send_json(200, { agentid = data.agentid, worker = ngx.worker.pid() })
end

function _M.seen()
    local results = ngx.shared.results
    local out = {}
    for _, key in ipairs(results:get_keys(0)) do
        local v = results:get(key)
        out[key] = key:sub(1, 2) == "n:" and v or cjson.decode(v)
    end
    return send_json(200, out)
end

return _M
