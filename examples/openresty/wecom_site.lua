-- The Lua side of examples/openresty/nginx.conf.
--
-- init()         init_by_lua: the app client, the callback crypto, the router,
--                and the provider's third-party app (wecom.suite) when
--                WECOM_SUITE_ID is set (built once in the master, inherited
--                by every worker)
-- init_worker()  init_worker_by_lua: warms the token from a timer, the way
--                out of phases that cannot do network I/O
-- callback()     content_by_lua for the app's callback URL
-- suite_callback()  content_by_lua for the suite's 指令回调/数据回调 URL
-- admin()        content_by_lua for /admin/*: JSON
-- app, suite     the clients, for the pages (wecom_web.lua)

local cjson = require "cjson.safe"
local wecom = require "wecom"

-- handlers set ngx.status and ngx.header
-- luacheck: globals ngx
local ngx = ngx

local _M = {}

local app, handler, suite_handler

local function env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        if default == nil then
            error("examples/openresty: environment variable " .. name .. " is not set"
                .. " (and listed with an `env " .. name .. ";` line in nginx.conf)", 0)
        end
        return default
    end
    return v
end

-- Counts events by type in a shared dict, for GET /admin/events.
local function record(event)
    local events = ngx.shared.wecom_events
    events:incr("count:" .. tostring(event.type), 1, 0)
    events:set("last", cjson.encode { type = event.type, corpid = event.corpid, time = event.time })
end

-- The provider's third-party app, when the site is also a provider's:
-- its ticket, its token and the permanent codes of the corps that installed
-- it live in the shared dict (for nginx's lifetime: a real site also keeps
-- auth.permanent_code in its database and hands it back with
-- suite:set_permanent_code at start).
local function new_suite(base_url, web_base_url)
    local suite_id = env("WECOM_SUITE_ID", false)
    if not suite_id then
        return nil
    end
    return wecom.suite {
        suite_id = suite_id,
        suite_secret = env("WECOM_SUITE_SECRET"),
        token = env("WECOM_SUITE_TOKEN"),
        aes_key = env("WECOM_SUITE_AES_KEY"),
        provider_corpid = env("WECOM_PROVIDER_CORPID", false) or nil,
        base_url = base_url,
        web_base_url = web_base_url,
        store = wecom.store.shdict("wecom_tokens"),
    }
end

function _M.init()
    local corpid = env("WECOM_CORPID")
    local base_url = env("WECOM_BASE_URL", "https://qyapi.weixin.qq.com")
    -- WeCom's web pages (install, OAuth); the emulator serves them on its own URL
    local web_base_url = env("WECOM_WEB_BASE_URL", false) or nil
    app = wecom.new {
        corpid = corpid,
        secret = env("WECOM_SECRET"),
        agentid = tonumber(env("WECOM_AGENTID")),
        base_url = base_url,
        web_base_url = web_base_url,
        store = wecom.store.shdict("wecom_tokens"),
    }
    _M.app = app
    _M.suite = new_suite(base_url, web_base_url)
    if _M.suite then
        -- answers WeCom at once; the bookkeeping (the ticket, create_auth's
        -- exchange) runs in a timer right after
        suite_handler = wecom.ngx.callback_handler { suite = _M.suite }
    end

    local cb = wecom.callback.new {
        token = env("WECOM_CALLBACK_TOKEN"),
        aes_key = env("WECOM_CALLBACK_AES_KEY"),
        receive_id = corpid,
        -- WeCom resends an event it saw no 200 for within 5 s: a resend that
        -- reaches either worker is answered without running the router again
        dedupe = wecom.store.shdict("wecom_callbacks"),
    }

    local router = wecom.callback.router()
    -- 上下游 / 企业互联: the set of corps the app is shared to changed; the
    -- event carries no list, so a real site re-reads app:shared_corps{}.
    router:on("share_chain_change", record)
    router:on("share_agent_change", record)
    router:on("change_chain", record)
    router:on("batch_job_result", record)
    -- a text message: answered with a passive (encrypted) reply
    router:on("text", function(event)
        record(event)
        return "<xml><ToUserName><![CDATA[" .. tostring(event.FromUserName) .. "]]></ToUserName>"
            .. "<FromUserName><![CDATA[" .. tostring(event.ToUserName) .. "]]></FromUserName>"
            .. "<CreateTime>" .. ngx.time() .. "</CreateTime>"
            .. "<MsgType><![CDATA[text]]></MsgType>"
            .. "<Content><![CDATA[received]]></Content></xml>"
    end)
    router:default(record)

    handler = wecom.ngx.callback_handler { callback = cb, router = router }
end

function _M.init_worker()
    -- No cosockets in init_worker: the token is fetched from a timer.  Both
    -- workers try; the shared dict's lock lets one of them call gettoken.
    local ok, err = ngx.timer.at(0, function(premature)
        if premature then
            return
        end
        local token, terr = app:token()
        if not token then
            ngx.log(ngx.WARN, "wecom example: token warm-up failed: ", tostring(terr))
        end
    end)
    if not ok then
        ngx.log(ngx.WARN, "wecom example: cannot create the warm-up timer: ", err)
    end
end

function _M.callback()
    return handler()
end

function _M.suite_callback()
    if not suite_handler then
        ngx.status = 404
        return ngx.say("no third-party app here (WECOM_SUITE_ID is not set)")
    end
    return suite_handler()
end

local function send_json(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json; charset=utf-8"
    ngx.say(cjson.encode(value))
end

local function fail(err)
    -- tostring(err) names kind, code and path, never a token or secret
    ngx.log(ngx.WARN, "wecom example: ", tostring(err))
    local status = (err.kind == "transport" or err.kind == "timeout" or err.kind == "tls") and 502 or 500
    return send_json(status, { error = err.kind, errcode = err.errcode, errmsg = err.errmsg })
end

local admin = {}

-- GET /admin/chains -> { chains = [ { chain_id, chain_name }, ... ] }
function admin.chains()
    local chains, err = app.chain:list()
    if not chains then
        return fail(err)
    end
    return send_json(200, { chains = chains })
end

-- GET /admin/shared_corps?business_type=1[&details=1]
-- details=1 also reads each corp's app through its downstream token,
-- concurrently (wecom.parallel runs as ngx.thread light threads here).
function admin.shared_corps()
    local args = ngx.req.get_uri_args()
    local business_type = tonumber(args.business_type) or 1
    if business_type ~= 0 and business_type ~= 1 then
        return send_json(400, { error = "business_type must be 0 or 1" })
    end
    local corps = {}
    local ok, err = pcall(function()
        for corp in app:shared_corps { business_type = business_type } do
            corps[#corps + 1] = corp
        end
    end)
    if not ok then
        return fail(err)
    end
    if args.details then
        local results = app:each_shared_corp(function(down)
            return down:get("/cgi-bin/agent/get", { agentid = down.agentid })
        end, { business_type = business_type, concurrency = 16 })
        for i, res in ipairs(results) do
            if corps[i] then
                corps[i].agent_name = res.ok and res.value.name or nil
                corps[i].error = not res.ok and tostring(res.err) or nil
            end
        end
    end
    return send_json(200, { corps = corps, count = #corps })
end

-- GET /admin/events -> { counts = { [type] = n }, last = { type, corpid, time } }
function admin.events()
    local events = ngx.shared.wecom_events
    local counts = {}
    for _, key in ipairs(events:get_keys(0)) do
        local t = key:match("^count:(.*)$")
        if t then
            counts[t] = events:get(key)
        end
    end
    return send_json(200, { counts = counts, last = cjson.decode(events:get("last") or "null") })
end

function _M.admin()
    local name = ngx.var.uri:match("^/admin/([%w_]+)$")
    local fn = name and admin[name]
    if not fn then
        return send_json(404, { error = "no such admin endpoint" })
    end
    if ngx.req.get_method() ~= "GET" then
        return send_json(405, { error = "GET only" })
    end
    return fn()
end

return _M
