-- Specs' handle on the WeCom emulator (docs/emulator.md, "In busted specs").
--
--   local emu = require "helpers.emulator"
--   local info = emu.start{ corps = 50 }      -- {base_url, ca_file, dir, port}
--   local status, data = emu.request("GET", "/cgi-bin/gettoken", { query = {...} })
--   emu.reset(); emu.stats(); emu.calls(path); emu.fault{ path = ..., errcode = -1 }
--   emu.advance(7200); emu.latency(20); emu.fixture(); emu.stop()
--   emu.fixture_app(fx, true); wecom.new(emu.app_options(info, fx, app, { retries = 0 }))
--   emu.hooks(function(fx, system, ordinary, info) ... end)  -- a describe's setup/teardown/before_each
--   emu.app_hooks(function(fx, system, ordinary, sys_token, ord_token) ... end)   -- and tokens before each
--   local data = emu.post(token, path, body)
--   local app = emu.client(true)    -- a wecom client for the system app (false: the ordinary one)
--
-- Each start gets a free port and its own --dir under /tmp, so parallel spec
-- runs do not collide. emu.new{...} gives an independent instance (several
-- emulators at once); the module-level functions act on the last one started.
-- Requests go over HTTPS with verification, through wecom.core's
-- http_session when it is available, otherwise the curl CLI.

local cjson = require "cjson"
local ports = require "helpers.ports"
local sh = require "helpers.sh"
local wurl = require "wecom.url"

local _M = {}

local LAUNCHER = "bin/wecom-emulator"
local INTERPRETER = rawget(_G, "jit") and "luajit" or "lua5.4"

local quote, run, read_file = sh.quote, sh.run, sh.read_file

_M.urlencode = wurl.escape

-- "?a=1&b=x" (keys sorted), "" without a query
local function query_string(query)
    if not query then
        return ""
    end
    return "?" .. wurl.encode_query(query, "emulator.request", 2)
end
_M.query_string = query_string

-- The LuaJIT build of wecom.core next to the one this runtime loads (the
-- emulator's push encrypts with it).
local function luajit_core_dir()
    local path = package.searchpath and package.searchpath("wecom.core", package.cpath)
    if not path then
        return nil
    end
    local build = path:match("^(.*)/[^/]+/wecom/core%.so$")
    if build and read_file(build .. "/luajit/wecom/core.so") then
        return build .. "/luajit"
    end
end

-- Transport -----------------------------------------------------------------

local http_session_ok
local function core_session(ca_file)
    if http_session_ok == false then
        return nil
    end
    local ok, core = pcall(require, "wecom.core")
    if not ok or type(core) ~= "table" or type(core.http_session) ~= "function" then
        http_session_ok = false
        return nil
    end
    local oks, session = pcall(core.http_session, { ca_file = ca_file, timeout = 30 })
    if not oks or not session then
        http_session_ok = false
        return nil
    end
    http_session_ok = true
    return session
end

local function curl_request(ca_file, method, url, headers, body, timeout)
    local tmp = os.tmpname()
    local cmd = { "curl -sS --max-time", tostring(timeout or 30), "--cacert", quote(ca_file),
        "-X", method, "-o", quote(tmp .. ".body"), "-w '%{http_code}'" }
    for k, v in pairs(headers or {}) do
        cmd[#cmd + 1] = "-H " .. quote(k .. ": " .. v)
    end
    if body then
        sh.write_file(tmp, body)
        cmd[#cmd + 1] = "--data-binary @" .. quote(tmp)
    end
    cmd[#cmd + 1] = quote(url)
    local code = sh.capture(table.concat(cmd, " ") .. " 2>" .. quote(tmp .. ".err"))
    local res_body = read_file(tmp .. ".body") or ""
    local err = read_file(tmp .. ".err") or ""
    os.remove(tmp)
    os.remove(tmp .. ".body")
    os.remove(tmp .. ".err")
    local status = tonumber(code)
    if not status or status == 0 then
        return nil, { kind = "transport", message = err }
    end
    return { status = status, body = res_body, headers = {} }
end

-- Instance ------------------------------------------------------------------

local Emulator = {}
Emulator.__index = Emulator

-- Low-level: one HTTPS request; returns res | nil, err.
function Emulator:raw_request(method, path, opts)
    opts = opts or {}
    local url = self.base_url .. path .. query_string(opts.query)
    local body = opts.raw_body
    local headers = opts.headers or {}
    if body == nil and opts.body ~= nil then
        body = cjson.encode(opts.body)
        headers["Content-Type"] = "application/json"
    end
    if self.session == nil then
        self.session = core_session(self.ca_file) or false
    end
    if self.session then
        local res, message, kind = self.session:request { method = method, url = url, headers = headers,
            body = body, timeout = opts.timeout }
        return res, not res and { kind = kind, message = message } or nil
    end
    return curl_request(self.ca_file, method, url, headers, body, opts.timeout)
end

-- request(method, path, { query =, body = | raw_body = }) -> status, data, res
function Emulator:request(method, path, opts)
    local res, err = self:raw_request(method, path, opts)
    if not res then
        error("emulator request " .. method .. " " .. path .. " failed: " .. tostring(err and err.message), 2)
    end
    local ok, data = pcall(cjson.decode, res.body)
    return res.status, ok and data or nil, res
end

-- Control helpers: raise unless the control API answered 200.
function Emulator:control(method, path, body)
    local status, data, res = self:request(method, "/__emulator/" .. path, { body = body })
    if status ~= 200 then
        error("emulator control " .. path .. ": HTTP " .. status .. " " .. tostring(res.body), 2)
    end
    return data
end

function Emulator:reset() return self:control("POST", "reset", {}) end
function Emulator:stats() return self:control("GET", "stats").calls end
-- calls(path) -> how many requests the path got since the last reset
function Emulator:calls(path) return self:stats()[path] or 0 end
function Emulator:fault(spec) return self:control("POST", "faults", spec) end
function Emulator:advance(seconds) return self:control("POST", "clock", { advance = seconds }) end
function Emulator:latency(ms) return self:control("POST", "latency", { ms = ms }) end
function Emulator:fixture() return self:control("GET", "fixture") end
function Emulator:options(o) return self:control("POST", "options", o) end
function Emulator:oauth_code(o) return self:control("POST", "oauth_code", o).code end
function Emulator:js_code(o) return self:control("POST", "js_code", o).code end
function Emulator:push(o) return self:control("POST", "push", o) end

-- Calls an API with a token: GET with query, POST with a JSON body.
function Emulator:api(method, path, token, params)
    if method == "GET" then
        local query = { access_token = token }
        for k, v in pairs(params or {}) do
            query[k] = v
        end
        return self:request("GET", path, { query = query })
    end
    return self:request("POST", path, { query = { access_token = token }, body = params or {} })
end

-- the fixture, asked once per instance
local function cached_fixture(self)
    self.fixture_cache = self.fixture_cache or self:fixture()
    return self.fixture_cache
end

-- post(token, path [, body]) -> the decoded answer of a POST API call
function Emulator:post(token, path, body)
    local _, data = self:api("POST", path, token, body)
    return data
end

-- client(system [, extra]) -> a wecom client (retries 0) for the fixture's
-- system app (true) or ordinary app (false), extra's options on top
function Emulator:client(system, extra)
    local fx = cached_fixture(self)
    return require("wecom").new(_M.app_options(self, fx, _M.fixture_app(fx, system), { retries = 0 }, extra))
end

-- An app token of the fixture's upstream corp (agentid: defaults to the system app).
function Emulator:app_token(agentid)
    local fx = cached_fixture(self)
    local app
    for _, a in ipairs(fx.upstream.apps) do
        if (agentid == nil and a.system) or a.agentid == agentid then
            app = a
        end
    end
    assert(app, "no such app in the fixture")
    local status, data = self:request("GET", "/cgi-bin/gettoken", {
        query = { corpid = fx.upstream.corpid, corpsecret = app.secret } })
    assert(status == 200 and data.errcode == 0, "gettoken failed")
    return data.access_token, app
end

-- A downstream token through corpgroup/corp/gettoken.
function Emulator:down_token(up_token, corpid, agentid, business_type)
    local _, data = self:api("POST", "/cgi-bin/corpgroup/corp/gettoken", up_token,
        { corpid = corpid, agentid = agentid, business_type = business_type or 1 })
    assert(data and data.errcode == 0, "corp/gettoken failed: " .. tostring(data and data.errmsg))
    return data.access_token
end

-- The upstream corp's chain system app (system = true) or its ordinary app,
-- from a fixture.
function _M.fixture_app(fx, system)
    for _, a in ipairs(fx.upstream.apps) do
        if (a.system == true) == system then
            return a
        end
    end
end

-- hooks(on_start [, { reset = false }]), inside a describe: the emulator
-- started in its setup (then on_start(fixture, the system app, the ordinary
-- app, what start returned)), stopped in its teardown and reset before each
-- of its tests (not with reset = false: the tests build on each other).
function _M.hooks(on_start, opts)
    local busted = require "busted"
    busted.setup(function()
        local info = _M.start()
        local fx = _M.fixture()
        on_start(fx, _M.fixture_app(fx, true), _M.fixture_app(fx, false), info)
    end)
    busted.teardown(function()
        _M.stop()
    end)
    if not (opts and opts.reset == false) then
        busted.before_each(function()
            _M.reset()
        end)
    end
end

-- app_hooks(on_each), inside a describe: hooks, and before each test (after
-- the reset) fresh tokens of the system app and of the ordinary app:
-- on_each(fixture, system app, ordinary app, system token, ordinary token)
function _M.app_hooks(on_each)
    local fx, system, ordinary
    _M.hooks(function(f, s, o) fx, system, ordinary = f, s, o end)
    require("busted").before_each(function()
        on_each(fx, system, ordinary, _M.app_token(system.agentid), _M.app_token(ordinary.agentid))
    end)
end

-- Options for wecom.new: app (a fixture app of fx's upstream corp) against
-- the emulator inst ({ base_url, ca_file }), then each further table's keys
-- on top, in order.
function _M.app_options(inst, fx, app, ...)
    local opts = { corpid = fx.upstream.corpid, secret = app.secret, agentid = app.agentid,
                   base_url = inst.base_url, ca_file = inst.ca_file }
    for i = 1, select("#", ...) do
        for k, v in pairs(select(i, ...) or {}) do
            opts[k] = v
        end
    end
    return opts
end

local function launcher(args)
    local tmp = os.tmpname()
    local ok = run(INTERPRETER .. " " .. LAUNCHER .. " " .. args .. " >" .. quote(tmp) .. " 2>&1")
    local out = read_file(tmp) or ""
    os.remove(tmp)
    return ok, out
end

function Emulator:stop()
    if self.stopped or not self.dir then
        return
    end
    self.stopped = true
    if self.session then
        self.session:close()
        self.session = nil
    end
    launcher("stop --dir " .. quote(self.dir))
    run("rm -rf " .. quote(self.dir))
end

-- new{ corps =, fixture =, workers =, port = } -> started instance
function _M.new(opts)
    opts = opts or {}
    local dir = "/tmp/wecom-emu-spec-" .. ports.random_int(100000, 999999999)
    local args = { "--dir", quote(dir) }
    if opts.corps then
        args[#args + 1] = "--corps " .. opts.corps
    end
    if opts.fixture then
        args[#args + 1] = "--fixture " .. quote(opts.fixture)
    end
    if opts.workers then
        args[#args + 1] = "--workers " .. opts.workers
    end
    local core = luajit_core_dir()
    if core then
        args[#args + 1] = "--core-cpath " .. quote(core)
    end
    local last
    for _ = 1, 8 do
        local port = opts.port or ports.pick()
        local ok, out = launcher("start --port " .. port .. " " .. table.concat(args, " "))
        if ok then
            local self = setmetatable({
                base_url = out:match("WECOM_BASE_URL=(%S+)"),
                ca_file = out:match("WECOM_CA_FILE=(%S+)"),
                dir = dir, port = port,
            }, Emulator)
            -- stops the emulator if the spec forgets to (collected at exit at the latest)
            if rawget(_G, "newproxy") then
                self.sentinel = newproxy(true)
                getmetatable(self.sentinel).__gc = function() self:stop() end
            else
                self.sentinel = setmetatable({}, { __gc = function() self:stop() end })
            end
            return self
        end
        last = out
        if not out:find("in use", 1, true) or opts.port then
            break
        end
    end
    run("rm -rf " .. quote(dir))
    error("emulator failed to start:\n" .. tostring(last), 2)
end

-- Module-level API on the current instance -----------------------------------

local current

function _M.start(opts)
    current = _M.new(opts)
    return { base_url = current.base_url, ca_file = current.ca_file, dir = current.dir,
        port = current.port }
end

function _M.stop()
    if current then
        current:stop()
        current = nil
    end
end

function _M.current()
    return current
end

local function delegate(name)
    return function(...)
        assert(current, "emulator not started")
        return current[name](current, ...)
    end
end

for _, name in ipairs { "request", "raw_request", "reset", "stats", "calls", "fault", "advance", "latency",
    "fixture", "options", "oauth_code", "js_code", "push", "api", "post", "client", "app_token", "down_token" } do
    _M[name] = delegate(name)
end

_M.control = {}
for _, name in ipairs { "reset", "stats", "fault", "advance", "latency", "fixture", "options",
    "oauth_code", "js_code", "push" } do
    _M.control[name] = delegate(name)
end

return _M
