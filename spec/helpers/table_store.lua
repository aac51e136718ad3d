-- A token store in plain Lua for the token manager's specs, open to
-- inspection: s.data[key] = { value =, expires_at = } (a spec may write
-- damaged entries straight in), s.locks[key] = true (a holder that died),
-- s.sets = how many set calls it had.
--
--   local table_store = require "helpers.table_store"
--   table_store()               -- get misses an entry whose expiry passed
--   table_store{ raw = true }   -- get hands back whatever an entry holds
--   table_store.unique(prefix)  -- a key no other case of the run uses
--   table_store.callers(n, store, key, fetch [, opts])  -- n concurrent token.get callers

local core = require "wecom.core"

local _M = {}

local function new(opts)
    local raw = opts and opts.raw
    local data, locks = {}, {}
    local s = { sets = 0, data = data, locks = locks }
    function s.get(_, key)
        local e = data[key]
        if e and (raw or e.expires_at > core.now()) then
            return e.value, e.expires_at
        end
        return nil
    end
    function s.set(_, key, value, expires_at)
        s.sets = s.sets + 1
        data[key] = { value = value, expires_at = expires_at }
        return true
    end
    function s.delete(_, key, only_if, only_if_expires_at)
        local e = data[key]
        if e and (only_if == nil or e.value == only_if)
            and (only_if_expires_at == nil or e.expires_at == only_if_expires_at) then
            data[key] = nil
            return true
        end
        return false
    end
    function s.lock(_, key)
        if locks[key] then
            return false
        end
        locks[key] = true
        return true
    end
    function s.unlock(_, key)
        locks[key] = nil
        return true
    end
    return s
end

local n = 0
function _M.unique(prefix)
    n = n + 1
    return prefix .. ":" .. n .. ":" .. core.nonce(8)
end

-- callers(n, store, key, fetch [, opts]) -> the results (wecom.parallel.run's)
-- of n callers of token.get(store, key, fetch, opts) at once
function _M.callers(count, store, key, fetch, opts)
    local token, parallel = require "wecom.token", require "wecom.parallel"
    local tasks = {}
    for i = 1, count do
        tasks[i] = function() return token.get(store, key, fetch, opts) end
    end
    return parallel.run(tasks)
end

return setmetatable(_M, { __call = function(_, opts) return new(opts) end })
