-- The WeCom emulator, running inside nginx + lua-nginx-module.
--   init_by_lua:        require("wecom.emulator").init{ fixture = path, corps = n }
--   init_worker_by_lua: require("wecom.emulator").init_worker()
--   content_by_lua:     require("wecom.emulator").handle()
-- Every API call goes: count -> take a fault -> latency -> the fault | route ->
-- method -> token -> body -> handler.

local fixture = require "wecom.emulator.fixture"
local store = require "wecom.emulator.store"
local server = require "wecom.emulator.server"
local tokens = require "wecom.emulator.tokens"
local faults = require "wecom.emulator.faults"

local ngx = ngx
local type = type
local pairs = pairs
local pcall = pcall
local tostring = tostring

local _M = {}

local routes = {}

local function add_routes(module_name)
    for path, route in pairs(require(module_name).routes) do
        routes[path] = route
    end
end

function _M.init(opts)
    fixture.load(opts or {})
    for _, name in ipairs {
        "wecom.emulator.api.base",
        "wecom.emulator.api.share",
        "wecom.emulator.api.chain",
        "wecom.emulator.api.linkedcorp",
        "wecom.emulator.api.service",
        "wecom.emulator.api.idconvert",
    } do
        add_routes(name)
    end
    -- loaded here so that workers inherit the compiled modules
    require "wecom.emulator.control"
    require "wecom.emulator.web"
end

function _M.init_worker()
    store.init_worker()
end

function _M.routes()
    return routes
end

local function check_token(req, route, args)
    local token = server.query_token(args, "access_token")
    if not token then
        server.fail(41001)
    end
    local info, expired = tokens.lookup(token)
    if not info then
        server.fail(40014)
    end
    -- suite and provider tokens are no access tokens (reference §9)
    if info.kind == "suite" or info.kind == "provider" then
        server.fail(40014, "invalid access_token: a " .. info.kind .. " token is not an access_token")
    end
    if expired then
        server.fail(store.option("expired_errcode", 42001))
    end
    -- a token of the wrong type is an invalid token to WeCom (reference §10)
    local need = route.token
    if need == "upstream" then
        -- a third-party app's corp token, only where the reference lets
        -- third-party apps call (route.third_party)
        if info.kind == "3rd" and not route.third_party then
            server.fail(48002, "third-party apps cannot call this API")
        end
        if (info.kind ~= "app" and info.kind ~= "3rd") or info.corpid ~= req.F.upstream.corpid then
            server.fail(40014, "invalid access_token: needs an upstream app access_token")
        end
    elseif need == "downstream" then
        if info.kind ~= "down" then
            server.fail(40014, "invalid access_token: needs a downstream corp access_token (corpgroup/corp/gettoken)")
        end
    end
    return info
end

local function run(route, path)
    local method = ngx.req.get_method()
    if method ~= route.method then
        server.fail(route.method == "GET" and 43001 or 43002)
    end
    local args = ngx.req.get_uri_args(100)
    local req = server.new_request { F = fixture.get(), path = path, args = args }
    if type(route.token) == "function" then
        -- suite and provider tokens (api/service.lua)
        req.token = route.token(req)
    elseif route.token ~= false then
        req.token = check_token(req, route, args)
    end
    if method == "POST" then
        local raw = server.read_body()
        if route.body_optional and (raw == nil or raw == "") then
            raw = "{}"
        end
        local body, code, detail = server.parse_json_body(raw)
        if not body then
            server.fail(code, detail)
        end
        req.body = body
    end
    return route.fn(req)
end

local function api(path)
    store.count_call(path)
    -- Faults go to requests in the order they arrive; latency then delays
    -- every answer, faulted ones included.
    local fault = faults.take(path)
    local ms = store.get("latency_ms")
    if ms and ms > 0 then
        ngx.sleep(ms / 1000)
    end
    if fault then
        if fault.delay_ms then
            ngx.sleep(fault.delay_ms / 1000)
        elseif fault.close then
            -- Start the answer, then drop the connection mid-body: a client
            -- cannot mistake this for a stale keep-alive connection and
            -- silently resend (libcurl does that when nothing arrives).
            ngx.status = 200
            ngx.header["Content-Type"] = "application/json; charset=UTF-8"
            ngx.header["Content-Length"] = 64
            ngx.print('{"errcode":0,"errmsg":"ok",')
            ngx.flush(true)
            return ngx.exit(ngx.ERROR)
        elseif fault.body then
            return server.send(fault.http_status or 200, fault.body, fault.content_type)
        elseif fault.http_status then
            return server.send(fault.http_status,
                "<html><head><title>" .. fault.http_status .. "</title></head><body>"
                .. "<center><h1>" .. fault.http_status .. "</h1></center></body></html>",
                "text/html")
        elseif fault.errcode then
            return server.send_error(fault.errcode, fault.detail)
        end
    end

    local route = routes[path]
    if not route then
        return server.send_error(48001, "no such API " .. path, 404)
    end
    local ok, result = pcall(run, route, path)
    if ok then
        -- route.no_errcode: answers documented without errcode on success
        if not route.no_errcode then
            result.errcode = 0
            result.errmsg = "ok"
        end
        return server.send_json(200, result)
    end
    if server.is_api_error(result) then
        return server.send_error(result.errcode, result.detail, result.http_status)
    end
    ngx.log(ngx.ERR, "wecom emulator: ", path, ": ", tostring(result))
    return server.send_error(-1, "internal error", 500)
end

function _M.handle()
    local path = ngx.var.uri
    if path:sub(1, 12) == "/__emulator/" then
        return require("wecom.emulator.control").handle(path)
    end
    -- the install and OAuth pages a person clicks through
    local page = require("wecom.emulator.web").pages[path]
    if page then
        return page()
    end
    return api(path)
end

return _M
