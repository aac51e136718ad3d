-- The control API under /__emulator/ (no token; plain JSON in and out).
-- Errors: HTTP 400 {"error": "..."}; unknown path 404; wrong method 405.

local json = require "wecom.json"
local store = require "wecom.emulator.store"
local server = require "wecom.emulator.server"
local fixture = require "wecom.emulator.fixture"
local faults = require "wecom.emulator.faults"
local base = require "wecom.emulator.api.base"

local ngx = ngx
local type = type
local pcall = pcall
local error = error
local setmetatable = setmetatable

local _M = {}

local BAD = {}

local function bad(msg)
    error(setmetatable({ msg = msg }, BAD), 0)
end

local function body_object()
    local raw = server.read_body()
    if raw == nil or raw == "" then
        return json.object()
    end
    local value = json.decode(raw)
    if type(value) ~= "table" or value[1] ~= nil then
        bad("body must be a JSON object")
    end
    return value
end

local function ok(extra)
    local t = extra or {}
    t.ok = true
    return t
end

local handlers = {}

handlers["GET /__emulator/ping"] = function()
    return ok { pid = ngx.worker.pid(), workers = ngx.worker.count() }
end

handlers["GET /__emulator/fixture"] = function()
    return fixture.text()
end

handlers["POST /__emulator/reset"] = function()
    store.reset()
    return ok()
end

handlers["GET /__emulator/stats"] = function()
    return { calls = json.object(store.stats()) }
end

handlers["POST /__emulator/faults"] = function()
    local fault, err = faults.validate(body_object())
    if not fault then
        bad(err)
    end
    faults.add(fault)
    return ok { path = fault.path, count = fault.count }
end

local function clock()
    return { offset = store.clock_offset(), now = store.now() }
end

handlers["GET /__emulator/clock"] = clock

handlers["POST /__emulator/clock"] = function()
    local body = body_object()
    if type(body.advance) ~= "number" then
        bad("advance must be a number of seconds")
    end
    store.advance(body.advance)
    -- a job that is now due finishes (and pushes batch_job_result) at once
    require("wecom.emulator.api.chain").settle_jobs(fixture.get())
    return ok(clock())
end

handlers["POST /__emulator/latency"] = function()
    local body = body_object()
    if type(body.ms) ~= "number" or body.ms < 0 then
        bad("ms must be a non-negative number")
    end
    store.set("latency_ms", body.ms)
    return ok { ms = body.ms }
end

-- Behaviour switches: expired_errcode (42001 or 40014), token_ttl,
-- ticket_ttl, job_seconds (how long an import job runs), the
-- unionid_to_external_userid quota (idconvert_hour_limit, idconvert_day_limit,
-- idconvert_month_limit).
local OPTIONS = {
    expired_errcode = function(v) return v == 42001 or v == 40014 end,
    token_ttl = function(v) return type(v) == "number" and v > 0 end,
    ticket_ttl = function(v) return type(v) == "number" and v > 0 end,
    job_seconds = function(v) return type(v) == "number" and v >= 0 end,
    idconvert_hour_limit = function(v) return server.is_integer(v) and v >= 0 end,
    idconvert_day_limit = function(v) return server.is_integer(v) and v >= 0 end,
    idconvert_month_limit = function(v) return server.is_integer(v) and v >= 0 end,
}

handlers["POST /__emulator/options"] = function()
    local body = body_object()
    for name, value in pairs(body) do
        local valid = OPTIONS[name]
        if not valid then
            bad("unknown option " .. tostring(name))
        end
        if not valid(value) then
            bad("invalid value for option " .. name)
        end
    end
    for name, value in pairs(body) do
        store.set_option(name, value)
    end
    return ok()
end

-- Codes for the identity APIs: what WeCom would hand a browser or a mini
-- program after the user consents.
local function mint(kind)
    local body = body_object()
    local F = fixture.get()
    if body.agentid ~= nil and (type(body.agentid) ~= "number" or not F.apps[body.agentid]) then
        bad("agentid must be an upstream app's agentid")
    end
    local fields = { agentid = body.agentid }
    if kind == "oauth" and body.openid ~= nil then
        if type(body.openid) ~= "string" or body.openid == "" then
            bad("openid must be a non-empty string")
        end
        fields.openid = body.openid
    else
        local corpid = body.corpid or F.upstream.corpid
        local corp = type(corpid) == "string" and F.corps[corpid]
        if not corp then
            bad("corpid must be a corp of the fixture")
        end
        if type(body.userid) ~= "string" or not corp.users_by_id[body.userid] then
            bad("userid must be a user of that corp")
        end
        fields.corpid, fields.userid = corpid, body.userid
    end
    local code, expires_in = base.mint_code(kind, fields)
    return ok { code = code, expires_in = expires_in }
end

handlers["POST /__emulator/oauth_code"] = function() return mint("oauth") end
handlers["POST /__emulator/js_code"] = function() return mint("js") end

handlers["POST /__emulator/push"] = function()
    return require("wecom.emulator.push").push(body_object(), bad)
end

-- Where an app's events go (batch_job_result): {"agentid", "url"}; a null
-- or empty url turns pushing off. Reset returns to the fixture's callback.url.
handlers["POST /__emulator/callback_url"] = function()
    local push = require "wecom.emulator.push"
    local body = body_object()
    local app = type(body.agentid) == "number" and fixture.get().apps[body.agentid]
    if not app then
        bad("agentid must be an upstream app's agentid")
    end
    if not app.callback then
        bad("app " .. app.agentid .. " has no callback settings in the fixture")
    end
    local url = body.url
    if url == json.null or url == "" then
        url = nil
    elseif not push.valid_url(url) then
        bad("url must be an http:// or https:// URL, or null")
    end
    push.set_callback_url(app.agentid, url)
    return ok { agentid = app.agentid, url = url or json.null }
end

handlers["GET /__emulator/pushes"] = function()
    return { pushes = require("wecom.emulator.push").log() }
end

-- providers: suite tickets, installs, shares, codes for third-party apps
require("wecom.emulator.provider_control").register(handlers, { bad = bad, body = body_object, ok = ok })
-- customers who join (idconvert's pending ids)
require("wecom.emulator.api.idconvert").register(handlers, { bad = bad, body = body_object, ok = ok })

local allowed = {}
for key in pairs(handlers) do
    local path = key:match(" (.*)$")
    allowed[path] = true
end

function _M.handle(path)
    local method = ngx.req.get_method()
    local handler = handlers[method .. " " .. path]
    if not handler then
        if allowed[path] then
            return server.send_json(405, { error = "method " .. method .. " not allowed for " .. path })
        end
        return server.send_json(404, { error = "no such control endpoint " .. path })
    end
    local ok_, result = pcall(handler, {})
    if not ok_ then
        if getmetatable(result) == BAD then
            return server.send_json(400, { error = result.msg })
        end
        ngx.log(ngx.ERR, "wecom emulator control ", path, ": ", tostring(result))
        return server.send_json(500, { error = "internal error" })
    end
    if type(result) == "string" then
        return server.send(200, result)
    end
    return server.send_json(200, result)
end

return _M
