-- wecom.testing: the WeCom emulator for your own specs.
--
--   local testing = require "wecom.testing"
--   local emu = testing.start { corps = 20 }     -- or { fixture = "my.json" | a table }
--   local app = emu:app()                        -- a wecom client for the chain system app
--   local suite = emu:suite()                    -- a wecom.suite for the provider's app, ticket kept
--   emu:fault { path = "/cgi-bin/gettoken", errcode = -1 }
--   emu:clock(7200); emu:latency(20); emu:stats(); emu:reset()
--   emu:push { url = "http://127.0.0.1:8080/callback", event = "share_chain_change" }
--   emu:stop()
--
-- Each start runs its own emulator (nginx) on a free port in a private
-- directory under /tmp, through the wecom-emulator launcher installed with
-- the rock (or bin/wecom-emulator of a checkout), and talks to its control
-- API over HTTPS with verification.  This is a test kit: a failure (the
-- emulator does not start, a control call is refused) raises with the reason,
-- so a broken setup stops the spec where it happened.

local error = error
local getmetatable = getmetatable
local io_open = io.open
local ipairs = ipairs
local os_getenv = os.getenv
local os_remove = os.remove
local pairs = pairs
local pcall = pcall
local rawget = rawget
local setmetatable = setmetatable
local tonumber = tonumber
local tostring = tostring
local type = type

local core = require "wecom.core"
local errors = require "wecom.errors"
local json = require "wecom.json"
local shell = require "wecom.shell"

local _M = {}

local Emulator = {}
Emulator.__index = Emulator

local CONTROL_TIMEOUT = 30
local MAX_OUTPUT = 4000   -- launcher output quoted in an error

local quote, run, capture = shell.quote, shell.run, shell.capture

local function exists(path)
    local f = io_open(path, "rb")
    if f then
        f:close()
        return true
    end
    return false
end

local function read_file(path)
    local f = io_open(path, "rb")
    if not f then
        return nil
    end
    local s = f:read("*a")
    f:close()
    return s
end

local function absolute(path)
    if path:sub(1, 1) == "/" then
        return path
    end
    local cwd = os_getenv("PWD") or capture("pwd"):gsub("%s+$", "")
    return cwd .. "/" .. path:gsub("^%./", "")
end

-- The launcher: $WECOM_EMULATOR_BIN, else next to this file (a checkout's
-- bin/, or the bin/ of the LuaRocks tree it is installed in), else on PATH.
local function find_launcher()
    local explicit = os_getenv("WECOM_EMULATOR_BIN")
    if explicit and explicit ~= "" then
        return explicit
    end
    local source = debug.getinfo(1, "S").source
    local file = source:sub(1, 1) == "@" and absolute(source:sub(2)) or ""
    local candidates = {}
    local checkout = file:match("^(.*)/lua/wecom/testing%.lua$")
    if checkout then
        candidates[#candidates + 1] = checkout .. "/bin/wecom-emulator"
    end
    local tree = file:match("^(.*)/share/lua/%d+%.%d+/wecom/testing%.lua$")
    if tree then
        candidates[#candidates + 1] = tree .. "/bin/wecom-emulator"
    end
    for _, path in ipairs(candidates) do
        if exists(path) then
            return path
        end
    end
    local found = capture("command -v wecom-emulator 2>/dev/null"):gsub("%s+$", "")
    if found ~= "" then
        return found
    end
    error("wecom.testing: cannot find the wecom-emulator launcher (installed with the rock;"
        .. " or set WECOM_EMULATOR_BIN)", 3)
end

local START_OPTIONS = {
    fixture = errors.kind("a file name or a fixture table", function(v)
        return (type(v) == "string" and v ~= "") or type(v) == "table"
    end),
    corps = errors.positive,
    workers = errors.positive,
    nginx = errors.string,
}

local function tmpdir()
    local dir = capture("mktemp -d /tmp/wecom-testing.XXXXXX 2>/dev/null"):gsub("%s+$", "")
    if dir == "" then
        error("wecom.testing.start: mktemp -d failed", 3)
    end
    return dir
end

-- stops the emulator when the object is collected (at exit at the latest),
-- if the spec did not
local function arm(self)
    local stop = function() self:stop() end
    local newproxy = rawget(_G, "newproxy")   -- LuaJIT: tables have no __gc there
    if newproxy then
        local proxy = newproxy(true)
        getmetatable(proxy).__gc = stop
        self.sentinel = proxy
    else
        self.sentinel = setmetatable({}, { __gc = stop })
    end
end

-- The token store of the clients app() makes: the process's memory cache,
-- under keys of this emulator and of its current "epoch".  reset() starts a
-- new epoch (and drops the old keys), so those clients forget their tokens
-- when the emulator does; otherwise their first call after a reset would
-- meet an unknown token and show up twice in stats().
local function epoch_store(self)
    local memory = require("wecom.store.memory").new()
    local keys = {}
    local function k(key)
        return "wecom.testing:" .. self.dir .. ":" .. self.epoch .. ":" .. key
    end
    local store = {}
    function store.get(_, key)
        return memory:get(k(key))
    end
    function store.set(_, key, value, expires_at)
        keys[k(key)] = true
        return memory:set(k(key), value, expires_at)
    end
    function store.set_durable(_, key, value, expires_at)
        keys[k(key)] = true
        return memory:set_durable(k(key), value, expires_at)
    end
    function store.list_durable(_, prefix)
        local listed, err = memory:list_durable(k(prefix))
        if not listed then
            return nil, err
        end
        local cut = #k("") + 1
        for i, key in ipairs(listed) do
            listed[i] = key:sub(cut)
        end
        return listed
    end
    function store.delete(_, key, ...)
        return memory:delete(k(key), ...)
    end
    function store.lock(_, key, lease_seconds)
        return memory:lock(k(key), lease_seconds)
    end
    function store.unlock(_, key)
        return memory:unlock(k(key))
    end
    function store.forget()
        for key in pairs(keys) do
            memory:delete(key)
        end
        keys = {}
    end
    return setmetatable(store, { __tostring = function() return "wecom.testing store (" .. self.base_url .. ")" end })
end

-- start{ fixture = FILE | table, corps = N, workers = N, nginx = PATH } -> emu
function _M.start(opts)
    opts = errors.options("wecom.testing.start", opts or {}, START_OPTIONS)
    if opts.fixture and opts.corps then
        errors.usage("wecom.testing.start", "give opts.fixture or opts.corps, not both")
    end
    local launcher = find_launcher()
    local dir = tmpdir()
    local args = { "start", "--dir", quote(dir) }
    local fixture = opts.fixture
    if type(fixture) == "table" then
        local text, err = json.encode(fixture)
        if not text then
            run("rm -rf " .. quote(dir))
            errors.usage("wecom.testing.start", "opts.fixture cannot be JSON: " .. tostring(err))
        end
        local f = io_open(dir .. "/fixture.json", "wb")
        f:write(text)
        f:close()
        fixture = dir .. "/fixture.json"
    end
    if fixture then
        args[#args + 1] = "--fixture " .. quote(absolute(fixture))
    end
    if opts.corps then
        args[#args + 1] = "--corps " .. opts.corps
    end
    if opts.workers then
        args[#args + 1] = "--workers " .. opts.workers
    end
    if opts.nginx then
        args[#args + 1] = "--nginx " .. quote(opts.nginx)
    end
    local out_file = dir .. "/launcher.out"
    local ok = run("sh " .. quote(launcher) .. " " .. table.concat(args, " ") .. " >" .. quote(out_file)
        .. " 2>&1")
    local out = read_file(out_file) or ""
    os_remove(out_file)
    local base_url, ca_file = out:match("WECOM_BASE_URL=(%S+)"), out:match("WECOM_CA_FILE=(%S+)")
    if not ok or not base_url or not ca_file then
        run("sh " .. quote(launcher) .. " stop --dir " .. quote(dir) .. " >/dev/null 2>&1")
        run("rm -rf " .. quote(dir))
        error("wecom.testing.start: the emulator did not start (" .. launcher .. "):\n"
            .. out:sub(-MAX_OUTPUT), 2)
    end
    local self = setmetatable({
        base_url = base_url,
        ca_file = ca_file,
        dir = dir,
        port = tonumber(base_url:match(":(%d+)$")),
        launcher = launcher,
        epoch = 1,
    }, Emulator)
    arm(self)
    self.store = epoch_store(self)
    local got, loaded = pcall(self.control, self, "GET", "fixture")
    if not got then
        self:stop()
        error(loaded, 2)
    end
    self.fixture = loaded
    return self
end

-- control(method, name [, body]) -> the decoded answer of /__emulator/<name>;
-- raises unless it answered 200
function Emulator:control(method, name, body)
    if self.stopped then
        error("wecom.testing: the emulator was stopped", 2)
    end
    if not self.session then
        self.session = core.http_session { ca_file = self.ca_file, timeout = CONTROL_TIMEOUT }
    end
    local text
    if body ~= nil then
        local err
        text, err = json.encode(body)
        if not text then
            error("wecom.testing: " .. name .. ": body cannot be JSON: " .. tostring(err), 3)
        end
    end
    local res, err = self.session:request {
        method = method,
        url = self.base_url .. "/__emulator/" .. name,
        headers = text and { ["Content-Type"] = "application/json" } or nil,
        body = text,
    }
    if not res then
        error("wecom.testing: " .. name .. ": " .. tostring(err and (err.message or err)), 3)
    end
    local data = json.decode(res.body)
    if res.status ~= 200 then
        local why = type(data) == "table" and data.error or res.body:sub(1, 200)
        error("wecom.testing: " .. name .. ": HTTP " .. res.status .. ": " .. tostring(why), 3)
    end
    return data
end

-- The fixture app: nil -> the chain system app (else the first app), a
-- number -> that agentid, a string -> that name.
function Emulator:app_info(name, level)
    local apps = self.fixture.upstream.apps
    for _, app in ipairs(apps) do
        if (name == nil and app.system == true) or app.agentid == name or app.name == name then
            return app
        end
    end
    if name == nil and apps[1] then
        return apps[1]
    end
    errors.usage("emu:app", "no app " .. tostring(name) .. " in the fixture", level or 2)
end

-- app([name [, opts]]) -> a wecom client for that fixture app against this
-- emulator (app:oauth_url points at its OAuth page); opts go to wecom.new
-- on top (retries, store, timeout, ...)
function Emulator:app(name, opts)
    local info = self:app_info(name, 3)
    local o = { corpid = self.fixture.upstream.corpid, secret = info.secret, agentid = info.agentid,
                base_url = self.base_url, ca_file = self.ca_file, web_base_url = self.base_url,
                store = self.store }
    for k, v in pairs(opts or {}) do
        o[k] = v
    end
    return require("wecom").new(o)
end

-- The fixture suite: nil -> the third-party app (else the first suite), a
-- string -> that suite_id or name.
function Emulator:suite_info(name, level)
    local P = self.fixture.provider
    if type(P) ~= "table" or type(P.suites) ~= "table" then
        errors.usage("emu:suite", "the fixture has no provider section", level or 2)
    end
    for _, s in ipairs(P.suites) do
        if (name == nil and not s.customized) or s.suite_id == name or s.name == name then
            return s
        end
    end
    if name == nil and P.suites[1] then
        return P.suites[1]
    end
    errors.usage("emu:suite", "no suite " .. tostring(name) .. " in the fixture", level or 2)
end

-- suite([name [, opts]]) -> a wecom.suite for that fixture suite against
-- this emulator, its suite_ticket already pushed (POST /__emulator/suite_ticket,
-- handed to suite:receive as the 指令回调 URL would), so suite:token() works
-- at once; install_url and oauth_url point at the emulator's pages.  opts go
-- to wecom.suite on top (store, retries, ...).  After emu:reset() the ticket
-- is gone with the rest: ask for the suite again.
function Emulator:suite(name, opts)
    local info = self:suite_info(name, 3)
    local callback = type(info.callback) == "table" and info.callback or {}
    local o = { suite_id = info.suite_id, suite_secret = info.suite_secret,
                token = callback.token, aes_key = callback.aes_key,
                provider_corpid = self.fixture.provider.corpid,
                base_url = self.base_url, ca_file = self.ca_file, web_base_url = self.base_url,
                store = self.store }
    for k, v in pairs(opts or {}) do
        o[k] = v
    end
    local suite = require("wecom").suite(o)
    local posted = self:control("POST", "suite_ticket", { suite_id = info.suite_id })
    local ok, err
    if o.token then
        ok, err = suite:receive(posted.query, posted.body)
    else
        ok, err = suite:set_ticket(posted.suite_ticket)
    end
    if not ok then
        error("wecom.testing: emu:suite: the suite_ticket was not kept: " .. tostring(err), 2)
    end
    return suite
end

-- fault{ path, count?, errcode | http_status | delay_ms | close | body }
function Emulator:fault(spec)
    errors.need("emu:fault", "spec", spec, errors.table)
    return self:control("POST", "faults", spec)
end

-- clock(seconds): moves the emulator clock on; -> { offset, now }
function Emulator:clock(seconds)
    errors.need("emu:clock", "seconds", seconds, errors.kind("a number", function(v)
        return type(v) == "number" and v == v
    end))
    return self:control("POST", "clock", { advance = seconds })
end

-- latency(ms): every API answer is delayed so long (0: none)
function Emulator:latency(ms)
    errors.need("emu:latency", "ms", ms, errors.kind("a number >= 0", function(v)
        return type(v) == "number" and v >= 0
    end))
    return self:control("POST", "latency", { ms = ms })
end

-- stats() -> { ["/cgi-bin/gettoken"] = n, ... }: API calls by path
function Emulator:stats()
    return self:control("GET", "stats").calls
end

-- reset(): back to the fixture (tokens, faults, clock, stats, ...); the
-- clients from app() forget their tokens too
function Emulator:reset()
    local answer = self:control("POST", "reset", {})
    self.store.forget()
    self.epoch = self.epoch + 1
    return answer
end

-- push{ url, event | xml | verify, agentid?, ... } -> { status, body, attempts, ... }
function Emulator:push(spec)
    errors.need("emu:push", "spec", spec, errors.table)
    return self:control("POST", "push", spec)
end

-- oauth_code{ userid, corpid?, agentid? } -> a code for app:user_by_code
function Emulator:oauth_code(spec)
    errors.need("emu:oauth_code", "spec", spec, errors.table)
    return self:control("POST", "oauth_code", spec).code
end

-- options{ expired_errcode, token_ttl, ticket_ttl, job_seconds }
function Emulator:options(spec)
    errors.need("emu:options", "spec", spec, errors.table)
    return self:control("POST", "options", spec)
end

-- stop(): stops nginx and removes the private directory (twice is fine)
function Emulator:stop()
    if self.stopped then
        return
    end
    self.stopped = true
    if self.session then
        self.session:close()
        self.session = nil
    end
    run("sh " .. quote(self.launcher) .. " stop --dir " .. quote(self.dir) .. " >/dev/null 2>&1")
    run("rm -rf " .. quote(self.dir))
end

function Emulator:__tostring()
    return "wecom.testing emulator (" .. self.base_url .. (self.stopped and ", stopped)" or ")")
end

return _M
