-- wecom.store.shdict: tokens and tickets in a lua_shared_dict, shared by all
-- nginx workers.
--
--   lua_shared_dict wecom 1m;                       # nginx.conf, http block
--   local store = wecom.store.shdict("wecom")
--
-- Entries:
--   <key>              "<expires_at>|<value>" (%.17g: the expiry reads back
--                      exactly), with the dict's own expiry set to
--                      expires_at, so an expired token is never handed out;
--                      an entry in another shape is a miss.  A durable entry
--                      (set_durable) has the dict flag DURABLE, and
--                      "-|<value>" without dict expiry when it has none
--   wecom-lock|<key>   the refresh lock of <key>: an owner id added with
--                      dict:safe_add (atomic "only if absent") and the lease
--                      as its expiry, so a worker that dies holding it
--                      cannot wedge the key
-- Nothing is ever evicted: every write is a safe_set or safe_add, which
-- fails with "no memory" rather than drop the least recently used entries
-- (nginx's set and add do that, to entries with or without an expiry).  A
-- write that finds the dict full first frees the expired entries
-- (flush_expired), then tries once more; still full, it is a store error
-- (the token manager keeps the token in the process meanwhile; a suite
-- reports it and hands the permanent code back).  So durable entries stay
-- as long as nginx runs, provided no other code writes into the dict.
-- Single flight: across workers the lock above; the token manager re-reads
-- the entry after taking it.  Within a worker, callers waiting for a refresh
-- sleep on an ngx.semaphore that the refresher posts when it unlocks, so they
-- wake as soon as the token is there (waiters in other workers poll).
-- Nothing here blocks the worker: shared-dict calls only take the dict's
-- mutex for a moment.

local ipairs = ipairs
local math_max = math.max
local pcall = pcall
local require = require
local setmetatable = setmetatable
local str_sub = string.sub
local table_sort = table.sort
local tostring = tostring
local type = type

local env = require "wecom.env"
local errors = require "wecom.errors"
local common = require "wecom.store.common"

local ngx = env.ngx

local _M = { name = "shdict" }

local mt = { __index = _M }

local LOCK_PREFIX = "wecom-lock|"
local DURABLE = 1     -- the dict flag of a durable entry

-- ngx.semaphore comes with lua-resty-core (OpenResty, and Debian's
-- lua-resty-core); without it waiters just sleep their poll interval.
local semaphore
do
    local ok, mod = pcall(require, "ngx.semaphore")
    if ok and type(mod) == "table" then
        semaphore = mod
    end
end

-- per worker: key -> { sema = semaphore, waiters = n }
local waiting = {}

local lock_counter = 0

local check = common.checks("shdict")
local check_key = check.key

local function now()
    return ngx.now()
end

function mt.__tostring(self)
    return "wecom.store.shdict (" .. self.dict_name .. ")"
end

-- what separates an entry's expiry from its value (common.record's sep)
local SEP = "|"

local function dict_error(self, err)
    return nil, errors.new("store", "lua_shared_dict " .. self.dict_name .. ": " .. tostring(err))
end

-- write(self, op, key, value, ttl, flags) -> true | nil, err | false
-- (op "safe_add": the key exists).  A full dict first drops its expired
-- entries; evicting a live one is never an option.
local function write(self, op, key, value, ttl, flags)
    local dict = self.dict
    local ok, err = dict[op](dict, key, value, ttl, flags)
    if not ok and err == "no memory" then
        dict:flush_expired()
        ok, err = dict[op](dict, key, value, ttl, flags)
    end
    if ok then
        return true
    elseif err == "exists" then
        return false
    elseif err == "no memory" then
        err = "full (" .. #key + #value .. " bytes more do not fit; no entry is evicted to make room)"
    end
    return dict_error(self, err)
end

-- get(key) -> value, expires_at | value (durable, no expiry) | nil
function _M.get(self, key)
    check_key("get", key)
    return common.live_record(self.dict:get(key), now(), SEP)
end

-- set(key, value, expires_at) -> true | nil, err
function _M.set(self, key, value, expires_at)
    check_key("set", key)
    check.value(value)
    check.expires_at(expires_at)
    local ttl = expires_at - now()
    if ttl <= 0 then
        -- already expired: nothing worth keeping
        self.dict:delete(key)
        return true
    end
    return write(self, "safe_set", key, common.record(expires_at, value, SEP), math_max(ttl, 0.001), 0)
end

-- set_durable(key, value [, expires_at]) -> true | nil, err
-- With expires_at, the dict expiry drops it then (a dict expiry is no
-- eviction: nothing here evicts); without, only delete or nginx's exit.
function _M.set_durable(self, key, value, expires_at)
    check_key("set_durable", key)
    check.durable(value, expires_at)
    if expires_at == nil then
        return write(self, "safe_set", key, common.record(nil, value, SEP), 0, DURABLE)
    end
    local ttl = expires_at - now()
    if ttl <= 0 then
        self.dict:delete(key)
        return true
    end
    return write(self, "safe_set", key, common.record(expires_at, value, SEP), math_max(ttl, 0.001), DURABLE)
end

-- list_durable(prefix) -> { key, ... }: the durable keys that start with
-- prefix, sorted.  dict:get_keys walks the whole dict (holding its lock):
-- fine for a listing of authorized corps, not for every request.
function _M.list_durable(self, prefix)
    check.prefix(prefix)
    local dict, keys, t = self.dict, {}, now()
    for _, key in ipairs(dict:get_keys(0)) do
        if str_sub(key, 1, #prefix) == prefix then
            local raw, flags = dict:get(key)
            if flags == DURABLE and common.live_record(raw, t, SEP) then
                keys[#keys + 1] = key
            end
        end
    end
    table_sort(keys)
    return keys
end

-- delete(key [, only_if_value [, only_if_expires_at]]) -> true (removed) | false
-- The compare and the delete are two dict calls; between them only another
-- worker can act, and it only ever replaces a token with a newer one.
function _M.delete(self, key, only_if_value, only_if_expires_at)
    check_key("delete", key)
    check.only_if_value(only_if_value)
    check.only_if_expires_at(only_if_expires_at, only_if_value)
    local raw = self.dict:get(key)
    if raw == nil then
        return false
    end
    if only_if_value ~= nil or only_if_expires_at ~= nil then
        local value, expires_at = common.split_record(raw, SEP)
        if value == nil or not common.matches(expires_at, value, only_if_value, only_if_expires_at) then
            return false
        end
    end
    self.dict:delete(key)
    return true
end

-- lock(key, lease_seconds) -> true | false | nil, err; never waits
function _M.lock(self, key, lease_seconds)
    check_key("lock", key)
    check.lease(lease_seconds)
    lock_counter = lock_counter + 1
    local owner = ngx.worker.pid() .. ":" .. lock_counter
    local ok, err = write(self, "safe_add", LOCK_PREFIX .. key, owner, lease_seconds, 0)
    if ok then
        self.owners[key] = owner
    end
    return ok, err
end

-- unlock(key) -> true.  Only our own lock is removed; waiters in this
-- worker are woken.
function _M.unlock(self, key)
    check_key("unlock", key)
    local owner = self.owners[key]
    if owner then
        self.owners[key] = nil
        local lock_key = LOCK_PREFIX .. key
        if self.dict:get(lock_key) == owner then
            self.dict:delete(lock_key)
        end
    end
    local w = waiting[self.dict_name .. "|" .. key]
    if w and w.waiters > 0 then
        w.sema:post(w.waiters)
    end
    return true
end

-- wait(key, seconds): returns when a refresher in this worker unlocks key,
-- or after seconds (a refresher in another worker cannot wake us).  Used by
-- the token manager instead of a plain sleep while someone else refreshes.
function _M.wait(self, key, seconds)
    if not semaphore or not env.can_yield() then
        -- env.sleep raises its own clear error where nginx cannot sleep
        return env.sleep(seconds)
    end
    local id = self.dict_name .. "|" .. key
    local w = waiting[id]
    if not w then
        w = { sema = semaphore.new(), waiters = 0 }
        waiting[id] = w
    end
    w.waiters = w.waiters + 1
    w.sema:wait(seconds)
    w.waiters = w.waiters - 1
    if w.waiters == 0 then
        -- posts nobody took would wake the next waiter at once
        waiting[id] = nil
    end
end

-- new(name) -> store; raises when the dict is not declared
function _M.new(name)
    local where = "wecom.store.shdict"
    if type(name) ~= "string" or name == "" then
        errors.usage(where, "name must be the name of a lua_shared_dict (got "
            .. errors.describe(name) .. ")")
    end
    if ngx == nil or type(ngx.shared) ~= "table" then
        errors.usage(where, "needs nginx with lua-nginx-module (OpenResty): ngx.shared"
            .. " is not available here")
    end
    local dict = ngx.shared[name]
    if dict == nil then
        errors.usage(where, "lua_shared_dict '" .. name .. "' is not declared; add"
            .. " `lua_shared_dict " .. name .. " 1m;` to nginx's http block")
    end
    return setmetatable({ dict = dict, dict_name = name, owners = {} }, mt)
end

return _M
