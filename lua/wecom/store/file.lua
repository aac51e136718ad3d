-- wecom.store.file: tokens and tickets shared by the processes of one host.
--
--   local store = wecom.store.file("/var/lib/myapp/wecom")   -- a directory
--
-- Layout (one directory, 0700, created if missing; its parent must exist):
--   .lock            flock(2) mutex, held only for the microseconds of a
--                    read-modify-write (set, delete, lock, unlock)
--   <key>.tok        "<expires_at>\n<value>", replaced atomically (temp file
--                    + rename), so get() reads without any lock and never sees
--                    a torn file; written 0600 and fsync'ed by default
--   <key>.lease      "<until>\n<owner>": the refresh lock of a key, a lease so
--                    a holder that died or hangs cannot wedge the key
-- <key> is the store key with every byte outside [A-Za-z0-9._-] written as
-- %XX.  One file per key keeps every operation O(1) however many downstream
-- corps share the store, and lets a reader see one key without parsing the
-- others.  Entries survive restarts: a cron job run every minute reuses the
-- token of the previous run.
--
-- The interface is the one of every store (notes/CONTRACTS.md, "Token
-- stores"); runtime failures return nil, err with err.kind == "store".

local error = error
local io_open = io.open
local os_remove = os.remove
local pcall = pcall
local setmetatable = setmetatable
local string_format = string.format
local tostring = tostring
local type = type

local core = require "wecom.core"
local errors = require "wecom.errors"
local common = require "wecom.store.common"

local _M = { name = "file" }

local mt = { __index = _M }

local ENOENT = 2
local DEFAULT_MUTEX_TIMEOUT = 5
local MAX_NAME = 200      -- below NAME_MAX (255) with room for suffixes

function mt.__tostring(self)
    return "wecom.store.file (" .. self.dir .. ")"
end

local function fail(msg)
    return nil, errors.new("store", msg)
end

local check = common.checks("file")
local check_key = check.key
local split_record = common.split_record

local function file_name(key)
    local name = key:gsub("[^%w%._%-]", function(c)
        return string_format("%%%02X", c:byte())
    end)
    if key:find("%u") then
        -- on a case-insensitive file system (macOS, Windows) "wpAbC" and
        -- "wpabc", two encrypted corpids, would share a file: the exact key's
        -- hash keeps them apart ('~' is never left unescaped)
        name = name .. "~" .. core.sha1_hex(key):sub(1, 16)
    end
    if #name > MAX_NAME then
        -- still unique: the hash covers the whole key
        name = name:sub(1, MAX_NAME - 41) .. "~" .. core.sha1_hex(key)
    end
    return name
end

-- Reads a whole file: content | nil (missing) | nil, err
local function read_file(path)
    local f, msg, code = io_open(path, "rb")
    if not f then
        if code == ENOENT then
            return nil
        end
        return fail("cannot read " .. tostring(msg))
    end
    local data, rerr = f:read("*a")
    f:close()
    if not data then
        return fail("cannot read " .. path .. ": " .. tostring(rerr))
    end
    return data
end

-- After a fork the child must not use the parent's lock file description
-- (flock would not exclude the two) nor its owner ids.
local function after_fork(self)
    local pid = core.getpid()
    if pid == self.pid then
        return true
    end
    local mutex, err = core.flock_open(self.dir .. "/.lock")
    if not mutex then
        return fail(err)
    end
    self.mutex:close()     -- our copy only; never unlock the parent's lock
    self.mutex, self.pid = mutex, pid
    self.held, self.serial = {}, 0
    self.owner_prefix = core.nonce(16) .. ":"
    return true
end

-- Runs fn(self, ...) holding the directory mutex.
local function with_mutex(self, fn, ...)
    local forked_ok, ferr = after_fork(self)
    if not forked_ok then
        return nil, ferr
    end
    local got, lerr = self.mutex:lock(true, self.mutex_timeout)
    if not got then
        if got == nil then
            return fail(lerr)
        end
        return fail("timed out waiting for the lock of " .. self.dir)
    end
    local ok, a, b = pcall(fn, self, ...)
    self.mutex:unlock()
    if not ok then
        error(a, 0)
    end
    return a, b
end

-- get(key) -> value, expires_at | nil | nil, err
function _M.get(self, key)
    check_key("get", key)
    local data, err = read_file(self.dir .. "/" .. file_name(key) .. ".tok")
    if err then
        return nil, err
    end
    local expires_at, value = split_record(data)
    if not expires_at or expires_at <= core.now() then
        return nil
    end
    return value, expires_at
end

local function set_locked(self, path, value, expires_at)
    local ok, err = core.write_atomic(path, common.record(expires_at, value), self.fsync)
    if not ok then
        return fail(err)
    end
    return true
end

-- set(key, value, expires_at) -> true | nil, err
function _M.set(self, key, value, expires_at)
    check_key("set", key)
    check.value(value)
    check.expires_at(expires_at)
    return with_mutex(self, set_locked, self.dir .. "/" .. file_name(key) .. ".tok", value, expires_at)
end

local function delete_locked(_, path, only_if_value)
    if only_if_value ~= nil then
        local data, err = read_file(path)
        if err then
            return nil, err
        end
        local expires_at, value = split_record(data)
        if not expires_at or value ~= only_if_value then
            return false
        end
    end
    local ok, msg, code = os_remove(path)
    if ok then
        return true
    elseif code == ENOENT then
        return false
    end
    return fail("cannot remove " .. tostring(msg))
end

-- delete(key [, only_if_value]) -> removed (boolean) | nil, err
-- With only_if_value, the entry goes only if it still holds that value.
function _M.delete(self, key, only_if_value)
    check_key("delete", key)
    check.only_if_value(only_if_value)
    return with_mutex(self, delete_locked, self.dir .. "/" .. file_name(key) .. ".tok", only_if_value)
end

local function lock_locked(self, key, path, lease)
    local data, err = read_file(path)
    if err then
        return nil, err
    end
    local now = core.now()
    local lease_end = split_record(data)
    if lease_end and lease_end > now then
        return false
    end
    self.serial = self.serial + 1
    local owner = self.owner_prefix .. self.serial
    local ok, werr = core.write_atomic(path, string_format("%.3f\n", now + lease) .. owner)
    if not ok then
        return fail(werr)
    end
    self.held[key] = owner
    return true
end

-- lock(key, lease_seconds) -> true | false (someone holds it) | nil, err
-- Never waits for the holder; the lease ends the lock if it is not released.
function _M.lock(self, key, lease_seconds)
    check_key("lock", key)
    check.lease(lease_seconds)
    return with_mutex(self, lock_locked, key, self.dir .. "/" .. file_name(key) .. ".lease", lease_seconds)
end

local function unlock_locked(self, key, path)
    local data, err = read_file(path)
    if err then
        return nil, err
    end
    local _, owner = split_record(data)
    if owner == self.held[key] then
        local ok, msg, code = os_remove(path)
        if not ok and code ~= ENOENT then
            return fail("cannot remove " .. tostring(msg))
        end
    end
    self.held[key] = nil
    return true
end

-- unlock(key) -> true | nil, err.  Only releases a lease this store object
-- took and that nobody has taken over since it ran out.
function _M.unlock(self, key)
    check_key("unlock", key)
    if not self.held[key] then
        return true
    end
    return with_mutex(self, unlock_locked, key, self.dir .. "/" .. file_name(key) .. ".lease")
end

-- Releases the mutex file descriptor; the store is unusable afterwards.
function _M.close(self)
    self.mutex:close()
end

-- new(dir [, { fsync = true, mutex_timeout = 5 }]) -> store
-- Raises when dir cannot be used (missing parent, not a directory, no
-- permission): a bad path is a configuration mistake best seen at startup.
function _M.new(dir, opts)
    if type(dir) ~= "string" or dir == "" then
        error("wecom.store.file: path must be a non-empty string (got " .. type(dir) .. ")", 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error("wecom.store.file: options must be a table", 2)
    end
    opts = opts or {}
    local mutex_timeout = opts.mutex_timeout or DEFAULT_MUTEX_TIMEOUT
    if type(mutex_timeout) ~= "number" or mutex_timeout ~= mutex_timeout or mutex_timeout < 0 then
        error("wecom.store.file: option 'mutex_timeout' must be a non-negative number", 2)
    end
    dir = dir:gsub("(.)/+$", "%1")
    local ok, err = core.mkdir(dir, 448)   -- 0700
    if not ok then
        error("wecom.store.file: " .. err, 2)
    end
    local mutex, merr = core.flock_open(dir .. "/.lock")
    if not mutex then
        error("wecom.store.file: " .. merr, 2)
    end
    return setmetatable({
        dir = dir,
        pid = core.getpid(),
        mutex = mutex,
        mutex_timeout = mutex_timeout,
        fsync = opts.fsync ~= false,
        held = {},
        serial = 0,
        owner_prefix = core.nonce(16) .. ":",
    }, mt)
end

return _M
