-- Code that runs inside nginx for spec/openresty/hostile_spec.lua: the
-- cosocket transport (and a client over it) against the hostile HTTPS
-- server of spec/helpers/hostile.lua, at SPEC_HOSTILE.  Each case returns
-- what it saw as JSON; the spec makes the assertions.

-- luacheck: globals ngx
local ngx = ngx

-- the worker's peak resident memory, in bytes
local peak_rss = require("helpers.hostile_peer").peak_rss

local _M = {}

local function url(path)
    if path:find("^https://") then
        return path
    end
    return os.getenv("SPEC_HOSTILE") .. path
end

local function err_table(err)
    if type(err) ~= "table" then
        return err ~= nil and { raised = tostring(err) } or nil
    end
    return { kind = err.kind, message = err.message, curl_code = err.curl_code, text = tostring(err) }
end

-- GET <path> through a transport: what came back, how long it took, how
-- much the worker's peak memory grew
local function fetch(path, opts)
    local o = { timeout = 2 }
    for k, v in pairs(opts or {}) do
        o[k] = v
    end
    local timeout = o.request_timeout
    o.request_timeout = nil
    local transport = require("wecom.transport").new(o)
    collectgarbage()
    local before = peak_rss()
    ngx.update_time()
    local t0 = ngx.now()
    local res, err = transport:request { method = "GET", url = url(path), timeout = timeout }
    ngx.update_time()
    return { status = res and res.status, body = res and res.body, err = err_table(err),
        elapsed = ngx.now() - t0, grew = peak_rss() - before, pid = ngx.worker.pid() }
end

local cases = {}

function cases.get()
    local args = ngx.req.get_uri_args()
    return fetch(args.path, { max_body = tonumber(args.max_body), request_timeout = tonumber(args.timeout) })
end

-- a client whose base_url is the hostile server: the first path segment
-- picks the answer
function cases.client()
    local args = ngx.req.get_uri_args()
    local wecom = require "wecom"
    local app = wecom.new { corpid = "wwHOSTILE", secret = "s", timeout = 2, retries = 0,
        base_url = url("/" .. args.answer) }
    ngx.update_time()
    local t0 = ngx.now()
    local data, err = app:get("/cgi-bin/x")
    ngx.update_time()
    return { ok = data ~= nil, err = err_table(err), elapsed = ngx.now() - t0 }
end

function cases.pid()
    return { pid = ngx.worker.pid() }
end

function _M.run()
    return require("ngx_cases").serve(cases)
end

return _M
