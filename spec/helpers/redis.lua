-- A private redis-server for specs: its own port, its own temp directory,
-- no persistence.  Stops only the process it started (by pid).
--
--   local redis = require "helpers.redis"
--   local srv = redis.start{ password = "s3cret" }   -- host, port, password, dir
--   srv:stop(); srv:restart()                         -- same port
--   srv:connect{ db = 1 }                             -- a core.redis_connect conn

local core = require "wecom.core"
local sh = require "helpers.sh"

local _M = {}

local Server = {}
Server.__index = Server


local function sleep(seconds)
    if core.sleep then
        core.sleep(seconds)
    else
        os.execute("sleep " .. seconds)
    end
end

local read_file = sh.read_file

-- A daemonized server is reaped by init, perhaps late: a zombie counts as gone.
local function alive(pid)
    local stat = read_file("/proc/" .. pid .. "/stat")
    return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
end

function Server:connect(opts)
    local o = { host = "127.0.0.1", port = self.port, password = self.password, timeout = 1 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return core.redis_connect(o)
end

-- Launches redis-server on self.port; true once it answers PING.
function Server:launch()
    local args = {
        "redis-server", "--port", tostring(self.port), "--bind", "127.0.0.1",
        "--dir", self.dir, "--daemonize", "yes",
        "--pidfile", self.dir .. "/redis.pid", "--logfile", self.dir .. "/redis.log",
        "--save", "''", "--appendonly", "no", "--databases", "4",
    }
    if self.password then
        args[#args + 1] = "--requirepass"
        args[#args + 1] = self.password
    end
    -- a log or pid file of an earlier attempt must not be mistaken for this one's
    os.remove(self.dir .. "/redis.pid")
    os.remove(self.dir .. "/redis.log")
    sh.capture(table.concat(args, " ") .. " 2>&1")
    for _ = 1, 200 do
        local pid = tonumber(read_file(self.dir .. "/redis.pid") or "")
        if pid then
            local conn = self:connect()
            if conn then
                -- the answer must come from our process, not a neighbour on the port
                local info = conn:command("INFO", "server") or ""
                conn:close()
                if tonumber(info:match("process_id:(%d+)")) == pid then
                    self.pid = pid
                    return true
                end
            end
        end
        local log = read_file(self.dir .. "/redis.log") or ""
        if log:find("Address already in use", 1, true) or log:find("Could not create server", 1, true) then
            break
        end
        sleep(0.01)
    end
    -- never leave a half-started server behind
    local pid = tonumber(read_file(self.dir .. "/redis.pid") or "")
    if pid then
        self.pid = pid
        self:stop()
    end
    return false
end

function Server:stop()
    if not self.pid then return end
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    for _ = 1, 300 do
        if not alive(self.pid) then break end
        sleep(0.01)
    end
    self.pid = nil
end

function Server:restart()
    self:stop()
    assert(self:launch(), "redis-server did not come back on port " .. self.port)
end

-- Removes the temp directory too.
function Server:destroy()
    self:stop()
    if self.dir and self.dir:match("^/tmp/wecom%-redis%.") then
        os.execute("rm -rf " .. sh.quote(self.dir))
    end
end

-- start{ password = } -> server
function _M.start(opts)
    opts = opts or {}
    local dir = sh.tmpdir("wecom-redis")
    local srv = setmetatable({ host = "127.0.0.1", dir = dir, password = opts.password }, Server)
    for _ = 1, 10 do
        srv.port = require("helpers.ports").pick()
        if srv:launch() then
            return srv
        end
    end
    srv:destroy()
    error("could not start redis-server; see " .. dir .. "/redis.log")
end

return _M
