-- wecom.store.redis: tokens and tickets shared by many hosts.
--
--   local store = wecom.store.redis{ host = "10.0.0.5", port = 6379,
--                                    password = "...", db = 0, prefix = "wecom:" }
--
-- Keys (prefix + the store key):
--   <prefix><key>        "<expires_at>\n<value>", SET with PX so Redis drops
--                        it when the token expires; a durable entry
--                        (set_durable) is SET without PX: "-\n<value>", or
--                        "<expires_at>\n<value>" checked on read, so no
--                        volatile-* policy ever evicts it
--   <prefix>lock:<key>   a random owner id, SET NX PX <lease>: the refresh
--                        lock of a key; it ends by itself after the lease
--   <prefix>durable      a sorted set of the durable keys (every score 0):
--                        list_durable reads a prefix of it with ZRANGEBYLEX
-- Every write and delete is one command or one Lua script (EVAL) that also
-- keeps the sorted set right, so it never lists a key that is not durable;
-- unlock and compare-and-delete are scripts too, so only the holder of the
-- lock, or of the expected value, deletes.  The scripts name two keys:
-- Redis Cluster is not supported.
--
-- Transport: hiredis does the protocol everywhere.  In plain Lua it is the
-- core's blocking connection (one per store object, re-made after an I/O
-- error, so a Redis restart costs at most the calls made while it is down).
-- Inside nginx, in a phase that allows cosockets, the command bytes from
-- core.redis_format travel over ngx.socket.tcp (with a keepalive pool) and
-- core.redis_reader parses the answer; the worker never blocks.
--
-- When Redis is unreachable every method returns nil, err (err.kind ==
-- "store"); the message names host and port, never the password.  The
-- password is in no field of the store: only the closures that connect and
-- authenticate hold it (as the client holds the app secret).

local ipairs = ipairs
local math_floor = math.floor
local str_byte = string.byte
local str_char = string.char
local setmetatable = setmetatable
local tostring = tostring
local type = type

local core = require "wecom.core"
local env = require "wecom.env"
local errors = require "wecom.errors"
local common = require "wecom.store.common"

local ngx = env.ngx

local _M = { name = "redis" }

local mt = { __index = _M }

-- In every script: KEYS[1] the entry, KEYS[2] the sorted set of durable
-- keys, ARGV[1] the store key (the member).

-- an expiring entry: SET PX (ARGV[3] ms) of the record ARGV[2]; it is no
-- durable key (any more)
local SET_EXPIRING = [[
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
]]

-- a durable entry: SET of the record ARGV[2], without expiry, and listed
local SET_DURABLE = [[
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
]]

-- deletes KEYS[1]: ARGV[2] "any"; "value": only if its value (after the
-- expiry header) is ARGV[3]; "record": only if it holds exactly the record
-- ARGV[3] (value and expiry: the same fetch)
local DELETE = [[
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if ARGV[2] == 'record' then
  if v ~= ARGV[3] then return 0 end
elseif ARGV[2] == 'value' then
  local nl = string.find(v, '\n', 1, true)
  if not nl or string.sub(v, nl + 1) ~= ARGV[3] then return 0 end
end
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
]]

-- deletes the lock KEYS[1] only if ARGV[1] still owns it
local UNLOCK = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
]]

function mt.__tostring(self)
    return "wecom.store.redis (" .. self.where .. ", db " .. self.db .. ", prefix " .. self.prefix .. ")"
end

-- ===== blocking connection (plain Lua) ====================================

-- After a fork the child must not talk over the parent's socket (replies
-- would interleave) nor reuse its owner ids.
local function after_fork(self)
    local pid = core.getpid()
    if pid ~= self.pid then
        if self.conn then
            self.conn:close()    -- closes our copy of the socket only
            self.conn = nil
        end
        self.pid = pid
        self.held, self.serial = {}, 0
        self.owner_prefix = core.nonce(16) .. ":"
    end
end

local function blocking_command(self, ...)
    local conn, reused = self.conn, true
    if not conn then
        if self.down_until and core.monotonic() < self.down_until then
            return nil, self.down_err, "io"
        end
        local err
        conn, err = self.connect_blocking()
        if not conn then
            -- do not pay a connect timeout on every call while Redis is away
            self.down_until = core.monotonic() + self.reconnect_delay
            self.down_err = err
            return nil, err, "io"
        end
        self.down_until, self.down_err = nil, nil
        self.conn, reused = conn, false
    end
    local res, err, marker = conn:command(...)
    if res == nil and marker == "io" then
        conn:close()
        self.conn = nil
        if reused then
            -- most likely a connection that died with a Redis restart: one
            -- more try on a new one
            return blocking_command(self, ...)
        end
    end
    return res, err, marker
end

-- ===== cosocket (inside nginx) ============================================

local function cosocket_roundtrip(sock, ...)
    local ok, err = sock:send(core.redis_format(...))
    if not ok then
        return nil, err, "io"
    end
    local reader = core.redis_reader()
    while true do
        local res, rerr, marker = reader:get_reply()
        if res ~= false then
            reader:close()
            return res, rerr, marker
        end
        local data, serr = sock:receiveany(65536)
        if not data then
            reader:close()
            return nil, serr, "io"
        end
        local fed, ferr, fmarker = reader:feed(data)
        if not fed then
            reader:close()
            return nil, ferr, fmarker
        end
    end
end

-- Like the blocking path: after a failed connect, calls fail fast until
-- reconnect_delay has passed (no connect timeout, and no error line from
-- nginx, per call while Redis is away).
local function cosocket_down(self, err)
    self.down_until = core.monotonic() + self.reconnect_delay
    self.down_err = err
    return nil, err, "io"
end

local function cosocket_command(self, ...)
    if self.down_until and core.monotonic() < self.down_until then
        return nil, self.down_err, "io"
    end
    local sock = ngx.socket.tcp()
    sock:settimeouts(self.timeout_ms, self.timeout_ms, self.timeout_ms)
    local ok, err
    if self.path then
        ok, err = sock:connect("unix:" .. self.path, { pool = self.pool })
    else
        ok, err = sock:connect(self.host, self.port, { pool = self.pool })
    end
    if not ok then
        return cosocket_down(self, "redis " .. self.where .. ": " .. tostring(err))
    end
    self.down_until, self.down_err = nil, nil
    if sock:getreusedtimes() == 0 then
        for _, cmd in ipairs(self.setup_commands()) do
            local res, serr, marker = cosocket_roundtrip(sock, cmd[1], cmd[2])
            if res == nil then
                sock:close()
                if marker == "redis" then
                    serr = cmd[1] .. " failed: " .. tostring(serr)
                end
                return cosocket_down(self, "redis " .. self.where .. ": " .. tostring(serr))
            end
        end
    end
    local res, rerr, marker = cosocket_roundtrip(sock, ...)
    if res == nil and (marker == "io" or marker == "protocol") then
        sock:close()
        return nil, "redis " .. self.where .. ": " .. tostring(rerr), marker
    end
    sock:setkeepalive(self.keepalive_ms, self.pool_size)
    return res, rerr, marker
end

-- ===== commands -> store results ==========================================

-- command(self, ...) -> reply | nil, store_err
-- A nil reply comes back as nil without an error.
local function command(self, ...)
    after_fork(self)
    local res, err, marker
    if env.can_yield() then
        res, err, marker = cosocket_command(self, ...)
    else
        res, err, marker = blocking_command(self, ...)
    end
    if res == nil and err ~= nil then
        if marker == "redis" then
            err = "redis " .. self.where .. ": " .. (...) .. ": " .. tostring(err)
        end
        return nil, errors.new("store", err)
    end
    return res
end

local check = common.checks("redis")
local check_key = check.key

local function unexpected(self, what, res)
    return nil, errors.new("store", "redis " .. self.where .. ": unexpected reply to " .. what
        .. " (" .. type(res) .. ")")
end

-- get(key) -> value, expires_at | nil | nil, err
function _M.get(self, key)
    check_key("get", key)
    local res, err = command(self, "GET", self.prefix .. key)
    if res == nil then
        return nil, err
    elseif type(res) ~= "string" then
        return unexpected(self, "GET", res)
    end
    -- the expiry check also covers hosts whose clocks run ahead of Redis',
    -- and durable entries, which Redis never drops by itself
    return common.live_record(res, core.now())
end

-- script(self, name, script, key, ...) -> reply | nil, err: one of the
-- scripts above on key's entry and the sorted set
local function script(self, name, text, key, ...)
    local res, err = command(self, "EVAL", text, 2, self.prefix .. key, self.index, key, ...)
    if res == nil then
        return nil, err or errors.new("store", "redis " .. self.where .. ": " .. name .. " was not applied")
    elseif type(res) ~= "number" then
        return unexpected(self, name, res)
    end
    return res
end

-- delete(key [, only_if_value [, only_if_expires_at]]) -> removed (boolean) | nil, err
function _M.delete(self, key, only_if_value, only_if_expires_at)
    check_key("delete", key)
    check.only_if_value(only_if_value)
    check.only_if_expires_at(only_if_expires_at, only_if_value)
    local res, err
    if only_if_expires_at ~= nil then
        res, err = script(self, "DEL", DELETE, key, "record", common.record(only_if_expires_at, only_if_value))
    elseif only_if_value ~= nil then
        res, err = script(self, "DEL", DELETE, key, "value", only_if_value)
    else
        res, err = script(self, "DEL", DELETE, key, "any", "")
    end
    if res == nil then
        return nil, err
    end
    return res == 1
end

-- set(key, value, expires_at) -> true | nil, err
function _M.set(self, key, value, expires_at)
    check_key("set", key)
    check.value(value)
    check.expires_at(expires_at)
    local ttl_ms = math_floor((expires_at - core.now()) * 1000)
    local res, err
    if ttl_ms <= 0 then
        res, err = script(self, "DEL", DELETE, key, "any", "")
    else
        res, err = script(self, "SET", SET_EXPIRING, key, common.record(expires_at, value), ttl_ms)
    end
    if res == nil then
        return nil, err
    end
    return true
end

-- set_durable(key, value [, expires_at]) -> true | nil, err
-- No PX: Redis itself never drops it (with maxmemory, keep a policy that
-- spares keys without a TTL: noeviction or volatile-*).  An expires_at is
-- kept in the record and checked by get.
function _M.set_durable(self, key, value, expires_at)
    check_key("set_durable", key)
    check.durable(value, expires_at)
    local res, err = script(self, "SET", SET_DURABLE, key, common.record(expires_at, value))
    if res == nil then
        return nil, err
    end
    return true
end

-- the least string greater than every string that starts with prefix, or
-- nil when there is none (prefix is all "\255")
local function after_prefix(prefix)
    local p = prefix:gsub("\255+$", "")
    if p == "" then
        return nil
    end
    return p:sub(1, -2) .. str_char(str_byte(p, -1) + 1)
end

-- list_durable(prefix) -> { key, ... } | nil, err: the durable keys that
-- start with prefix, sorted (ZRANGEBYLEX: O(log n + m))
function _M.list_durable(self, prefix)
    check.prefix(prefix)
    local upper = after_prefix(prefix)
    local res, err = command(self, "ZRANGEBYLEX", self.index, prefix == "" and "-" or "[" .. prefix,
        upper and "(" .. upper or "+")
    if res == nil then
        return nil, err or unexpected(self, "ZRANGEBYLEX", res)
    elseif type(res) ~= "table" then
        return unexpected(self, "ZRANGEBYLEX", res)
    end
    local keys = {}
    for i, k in ipairs(res) do
        if type(k) ~= "string" then
            return unexpected(self, "ZRANGEBYLEX", k)
        end
        keys[i] = k
    end
    return keys
end

-- lock(key, lease_seconds) -> true | false | nil, err   (never waits)
function _M.lock(self, key, lease_seconds)
    check_key("lock", key)
    check.lease(lease_seconds)
    after_fork(self)
    self.serial = self.serial + 1
    local owner = self.owner_prefix .. self.serial
    local lease_ms = math_floor(lease_seconds * 1000 + 0.5)
    if lease_ms < 1 then lease_ms = 1 end
    local res, err = command(self, "SET", self.prefix .. "lock:" .. key, owner, "NX", "PX", lease_ms)
    if res == "OK" then
        self.held[key] = owner
        return true
    elseif res == nil and err == nil then
        return false
    elseif res == nil then
        return nil, err
    end
    return unexpected(self, "SET NX", res)
end

-- unlock(key) -> true | nil, err.  Releases only a lock this store object
-- holds; a lease that ran out and was taken by someone else stays theirs.
function _M.unlock(self, key)
    check_key("unlock", key)
    after_fork(self)
    local owner = self.held[key]
    if not owner then
        return true
    end
    self.held[key] = nil
    local res, err = command(self, "EVAL", UNLOCK, 1, self.prefix .. "lock:" .. key, owner)
    if res == nil then
        return nil, err
    end
    return true
end

-- Closes the blocking connection (a later call opens a new one).
function _M.close(self)
    if self.conn then
        self.conn:close()
        self.conn = nil
    end
end

local positive = errors.kind("a positive number", function(v) return type(v) == "number" and v > 0 end)
local non_negative = errors.kind("a number >= 0", function(v) return type(v) == "number" and v >= 0 end)

local OPTIONS = {
    host = errors.string, path = errors.string, password = errors.any_string,
    prefix = errors.any_string,
    port = errors.kind("an integer 1..65535", function(v) return errors.is_integer(v, 1, 65535) end),
    db = errors.id,
    timeout = positive, reconnect_delay = non_negative, pool_size = positive,
    keepalive_timeout = positive,
}

-- A random key per process for the pool name's hash: pools of different
-- credentials stay apart, and the name is no offline test of a password.
local pool_salt = core.nonce(16)

-- new{ host = "127.0.0.1", port = 6379, path = nil (unix socket), password,
--      db = 0, prefix = "wecom:", timeout = 1, reconnect_delay = 0.2,
--      pool_size = 16, keepalive_timeout = 60 } -> store
-- Connects on first use, so a Redis that is down at startup is no error here.
function _M.new(opts)
    if opts == nil then
        opts = {}
    end
    errors.options("wecom.store.redis", opts, OPTIONS)
    local host, port = opts.host or "127.0.0.1", math_floor(opts.port or 6379)
    local db = math_floor(opts.db or 0)
    local timeout = opts.timeout or 1
    local where = opts.path or (host .. ":" .. port)
    local path = opts.path
    local prefix = opts.prefix or "wecom:"
    local self = {
        host = host, port = port, path = path, db = db, where = where,
        prefix = prefix, index = prefix .. "durable",
        timeout_ms = math_floor(timeout * 1000 + 0.5),
        reconnect_delay = opts.reconnect_delay or 0.2,
        pool_size = math_floor(opts.pool_size or 16),
        keepalive_ms = math_floor((opts.keepalive_timeout or 60) * 1000),
        held = {},
        serial = 0,
        owner_prefix = core.nonce(16) .. ":",
        pid = core.getpid(),
    }

    -- the password lives only in these closures, never in a field
    local password = opts.password
    self.connect_blocking = function()
        return core.redis_connect { host = host, port = port, path = path, password = password,
                                    db = db, timeout = timeout }
    end
    -- the commands a new cosocket connection sends first
    self.setup_commands = function()
        local setup = {}
        if password then setup[#setup + 1] = { "AUTH", password } end
        if db > 0 then setup[#setup + 1] = { "SELECT", db } end
        return setup
    end
    -- connections with different credentials or db never share a pool
    self.pool = "wecom.redis:" .. where .. ":" .. db .. ":"
        .. core.sha1_hex(pool_salt .. "\0" .. where .. "\0" .. db .. "\0" .. (password or "")):sub(1, 16)
    return setmetatable(self, mt)
end

return _M
