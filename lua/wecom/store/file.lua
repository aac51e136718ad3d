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
--   <key>.keep       a durable entry (set_durable): "-\n<value>", or
--                    "<expires_at>\n<value>" when it was given an expiry;
--                    written the same way.  The suffix lets list_durable
--                    find them with one directory listing; a key has a
--                    .tok or a .keep file, never both for long (each write
--                    removes the other, holding the mutex)
--   <key>.lease      "<until>\n<owner>": the refresh lock of a key, a lease so
--                    a holder that died or hangs cannot wedge the key
-- <key> is the store key URL-escaped (wecom.url.escape: no '/' can remain),
-- a long one cut and completed with its SHA-1 (so a durable key must be
-- short enough not to be cut: its name is how list_durable reads it back).  One file per key keeps
-- every operation O(1) however many downstream corps share the store, and
-- lets a reader see one key without parsing the others.  Entries survive
-- restarts: a cron job run every minute reuses the token of the previous run.
--
-- The directory is trusted only while it is private: owned by this process'
-- user and writable by nobody else (checked on every operation).  Entries
-- are never opened through a symbolic link nor when they are not regular
-- files, and never read past MAX_RECORD bytes.  Each refusal is a store
-- error, so the token manager serves the call from the in-process cache.
--
-- The interface is the one of every store (docs/stores.md, "Writing your
-- own store"); runtime failures return nil, err with err.kind == "store".

local error = error
local ipairs = ipairs
local os_remove = os.remove
local pcall = pcall
local setmetatable = setmetatable
local string_format = string.format
local table_sort = table.sort
local tostring = tostring
local type = type

local core = require "wecom.core"
local errors = require "wecom.errors"
local url = require "wecom.url"
local common = require "wecom.store.common"

local _M = { name = "file" }

local mt = { __index = _M }

local ENOENT = 2
local DEFAULT_MUTEX_TIMEOUT = 5
local MAX_NAME = 200      -- below NAME_MAX (255) with room for suffixes
local MAX_RECORD = 65536  -- an entry: an expiry and a token or ticket
local MAX_LEASE = 1024    -- a lease file: an expiry and an owner id
local TOK, KEEP = ".tok", ".keep"
-- the longest escaped durable key: its name, "=" and 16 hex digits (a key
-- with capitals) must not be cut
local MAX_DURABLE_NAME = MAX_NAME - 17

function mt.__tostring(self)
    return "wecom.store.file (" .. self.dir .. ")"
end

local function fail(msg)
    return nil, errors.new("store", msg)
end

local check = common.checks("file")
local check_key = check.key
local split_record = common.split_record
local live = common.live

-- entry_name(key) -> the file name (without suffix) of key's files
local function entry_name(key)
    local name = url.escape(key)
    if key:find("%u") then
        -- on a case-insensitive file system (macOS, Windows) "wpAbC" and
        -- "wpabc", two encrypted corpids, would share a file: the exact key's
        -- hash keeps them apart ('=' is never left unescaped)
        name = name .. "=" .. core.sha1_hex(key):sub(1, 16)
    end
    if #name > MAX_NAME then
        -- still unique: the hash covers the whole key, and '=' is never
        -- left unescaped, so no short key's name looks like this
        name = name:sub(1, MAX_NAME - 41) .. "=" .. core.sha1_hex(key)
    end
    return name
end

-- Reads a whole entry: content | nil (missing) | nil, err
local function read_entry(path, max)
    local data, err = core.read_regular(path, max)
    if err then
        return fail(err)
    end
    return data
end

-- nil, err unless the directory is still private
local function dir_ok(self)
    local ok, err = core.private_dir(self.dir)
    if not ok then
        return fail(err)
    end
    return true
end

-- The lock file is opened on first use, and again after a fork: the child
-- must not use the parent's lock file description (flock would not exclude
-- the two) nor its owner ids.
local function mutex(self)
    local pid = core.getpid()
    if self.mutex and pid == self.pid then
        return self.mutex
    end
    local m, err = core.flock_open_nofollow(self.dir .. "/.lock")
    if not m then
        return fail(err)
    end
    if self.mutex then
        self.mutex:close()     -- our copy only; never unlock the parent's lock
        self.held, self.serial = {}, 0
        self.owner_prefix = core.nonce(16) .. ":"
    end
    self.mutex, self.pid = m, pid
    return m
end

-- Runs fn(self, ...) holding the directory mutex.
local function with_mutex(self, fn, ...)
    local ok, err = dir_ok(self)
    if not ok then
        return nil, err
    end
    local m, merr = mutex(self)
    if not m then
        return nil, merr
    end
    local got, lerr = m:lock(true, self.mutex_timeout)
    if not got then
        if got == nil then
            return fail(lerr)
        end
        return fail("timed out waiting for the lock of " .. self.dir)
    end
    local pok, a, b = pcall(fn, self, ...)
    m:unlock()
    if not pok then
        error(a, 0)
    end
    return a, b
end

-- read_record(path) -> value, expires_at | nil (missing, or another
-- shape: empty, damaged) | nil, err
local function read_record(path)
    local data, err = read_entry(path, MAX_RECORD)
    if err then
        return nil, err
    end
    return split_record(data)
end

-- get(key) -> value, expires_at | value (durable, no expiry) | nil | nil, err
-- An entry in another shape (empty, damaged) is a miss.
function _M.get(self, key)
    check_key("get", key)
    local ok, derr = dir_ok(self)
    if not ok then
        return nil, derr
    end
    local base = self.dir .. "/" .. entry_name(key)
    local value, expires_at = read_record(base .. TOK)
    if value == nil and expires_at == nil then
        value, expires_at = read_record(base .. KEEP)
    end
    if value == nil then
        return nil, expires_at
    end
    return live(value, expires_at, core.now())
end

-- removes path; true | false (there was none) | nil, err
local function remove(path)
    local ok, msg, code = os_remove(path)
    if ok then
        return true
    elseif code == ENOENT then
        return false
    end
    return fail("cannot remove " .. tostring(msg))
end

-- writes record to base .. suffix, then removes the key's file of the
-- other kind (a reader sees the old entry or the new one)
local function set_locked(self, base, suffix, record)
    local ok, err = core.write_atomic(base .. suffix, record, self.fsync)
    if not ok then
        return fail(err)
    end
    ok, err = remove(base .. (suffix == TOK and KEEP or TOK))
    if ok == nil then
        return nil, err
    end
    return true
end

local function too_big(record)
    return fail("an entry of " .. #record .. " bytes is over the file store's " .. MAX_RECORD)
end

-- set(key, value, expires_at) -> true | nil, err
function _M.set(self, key, value, expires_at)
    check_key("set", key)
    check.value(value)
    check.expires_at(expires_at)
    local record = common.record(expires_at, value)
    if #record > MAX_RECORD then
        return too_big(record)
    end
    return with_mutex(self, set_locked, self.dir .. "/" .. entry_name(key), TOK, record)
end

-- set_durable(key, value [, expires_at]) -> true | nil, err
-- A file is never dropped by anything but delete; with expires_at, get
-- misses it from then on.  The key must fit a file name uncut.
function _M.set_durable(self, key, value, expires_at)
    check_key("set_durable", key)
    check.durable(value, expires_at)
    local escaped = #url.escape(key)
    if escaped > MAX_DURABLE_NAME then
        return fail("a durable key must fit a file name: this one escapes to " .. escaped
            .. " bytes, over the file store's " .. MAX_DURABLE_NAME)
    end
    local record = common.record(expires_at, value)
    if #record > MAX_RECORD then
        return too_big(record)
    end
    return with_mutex(self, set_locked, self.dir .. "/" .. entry_name(key), KEEP, record)
end

-- removes the file at path (only if it holds only_if_value, and that
-- expiry, when given) -> removed | nil, err
local function delete_file(path, only_if_value, only_if_expires_at)
    if only_if_value ~= nil then
        local value, expires_at = read_record(path)
        if value == nil then
            return nil, expires_at   -- nil, err; or nil: nothing to remove
        end
        if not common.matches(expires_at, value, only_if_value, only_if_expires_at) then
            return false
        end
    end
    return remove(path)
end

-- both files of the key: only one is there, but for a moment after a
-- write that switched kinds
local function delete_locked(_, base, only_if_value, only_if_expires_at)
    local removed = false
    for _, suffix in ipairs({ TOK, KEEP }) do
        local done, err = delete_file(base .. suffix, only_if_value, only_if_expires_at)
        if err then
            return nil, err
        end
        removed = removed or done == true
    end
    return removed
end

-- delete(key [, only_if_value [, only_if_expires_at]]) -> removed (boolean) | nil, err
-- With only_if_value, the entry goes only if it still holds that value (and
-- that expiry: the same fetch).
function _M.delete(self, key, only_if_value, only_if_expires_at)
    check_key("delete", key)
    check.only_if_value(only_if_value)
    check.only_if_expires_at(only_if_expires_at, only_if_value)
    return with_mutex(self, delete_locked, self.dir .. "/" .. entry_name(key), only_if_value,
        only_if_expires_at)
end

-- list_durable(prefix) -> { key, ... } | nil, err: the keys of the .keep
-- files that start with prefix, sorted; read from the names alone (one
-- directory listing, no file opened)
function _M.list_durable(self, prefix)
    check.prefix(prefix)
    local ok, derr = dir_ok(self)
    if not ok then
        return nil, derr
    end
    local names, err = core.list_dir(self.dir, KEEP)
    if not names then
        return fail(err)
    end
    local keys = {}
    for _, name in ipairs(names) do
        -- "<escaped key>[=<hash>].keep": '=' is never left unescaped
        local key = url.unescape((name:sub(1, -#KEEP - 1):gsub("=.*$", "")))
        if key:sub(1, #prefix) == prefix then
            keys[#keys + 1] = key
        end
    end
    table_sort(keys)
    return keys
end

local function lock_locked(self, key, path, lease)
    local data, err = read_entry(path, MAX_LEASE)
    if err then
        return nil, err
    end
    local now = core.now()
    local _, lease_end = split_record(data)
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
    return with_mutex(self, lock_locked, key, self.dir .. "/" .. entry_name(key) .. ".lease", lease_seconds)
end

local function unlock_locked(self, key, path)
    local data, err = read_entry(path, MAX_LEASE)
    if err then
        return nil, err
    end
    local owner = split_record(data)
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
    return with_mutex(self, unlock_locked, key, self.dir .. "/" .. entry_name(key) .. ".lease")
end

-- Releases the mutex file descriptor (a later call opens it again).
function _M.close(self)
    if self.mutex then
        self.mutex:close()
        self.mutex = nil
    end
end

local OPTIONS = {
    fsync = errors.boolean,
    mutex_timeout = errors.kind("a number of seconds >= 0", function(v)
        return type(v) == "number" and v >= 0 and v <= 86400
    end),
}

-- new(dir [, { fsync = true, mutex_timeout = 5 }]) -> store
-- Raises when dir cannot be made (missing parent, not a directory, no
-- permission): a bad path is a configuration mistake best seen at startup.
-- A directory that is not private is refused by every operation instead
-- (a store error each time, logged by the token manager once a minute):
-- its permissions may change while the process runs.
function _M.new(dir, opts)
    local where = "wecom.store.file"
    if type(dir) ~= "string" or dir == "" then
        errors.usage(where, "path must be a non-empty string (got " .. errors.describe(dir) .. ")")
    end
    if opts ~= nil then
        errors.options(where, opts, OPTIONS)
    else
        opts = {}
    end
    dir = dir:gsub("(.)/+$", "%1")
    local ok, err = core.mkdir(dir, 448)   -- 0700
    if not ok then
        errors.usage(where, err)
    end
    return setmetatable({
        dir = dir,
        mutex_timeout = opts.mutex_timeout or DEFAULT_MUTEX_TIMEOUT,
        fsync = opts.fsync ~= false,
        held = {},
        serial = 0,
        owner_prefix = core.nonce(16) .. ":",
    }, mt)
end

return _M
