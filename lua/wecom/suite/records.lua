-- wecom.suite.records: what a suite keeps in its store, under which keys.
--
-- Every key starts with the suite's namespace, so two suites (or one suite
-- on the emulator and on WeCom) never share anything:
--
--   wecom:suite:<suite_id>[@server]           ns(suite_id, server)
--     :ticket              the latest suite_ticket, until 30 minutes after
--                          WeCom issued it (never dropped by a token error)
--     :token               the suite_access_token (wecom.token)
--     :corp:<corpid>       the authorization: JSON with the permanent code,
--                          corp name, agentid; a durable entry (the store's
--                          set_durable: no expiry, never evicted), kept
--                          until cancel_auth
--     :corp:<corpid>:token the corp's access_token (wecom.token); its JSAPI
--                          tickets under it (wecom.token.ticket_key)
--     :done:<sha1>         an AuthCode already exchanged (WeCom may post an
--                          event again), for the code's 10 minutes
--
-- The authorized corps are the durable keys under ":corp:" (the store's
-- list_durable), so there is no index to keep in step and no bound on how
-- many.  Corpids are used exactly as WeCom sent them: an encrypted corpid is
-- case-sensitive.
--
-- Runtime failures are `nil, err` with err.kind "store"; what a store hands
-- back is data: a record that does not decode is reported, never used.

local ipairs = ipairs
local math_min = math.min
local pcall = pcall
local tostring = tostring
local type = type
local error = error
local str_find = string.find
local str_sub = string.sub

local core = require "wecom.core"
local errors = require "wecom.errors"
local json = require "wecom.json"
local parallel = require "wecom.parallel"
local url = require "wecom.url"

local _M = {}

local DEFAULT_SERVER = "https://qyapi.weixin.qq.com"
local TICKET_LIFETIME = 1800            -- a suite_ticket is valid 30 minutes
local AUTH_CODE_LIFETIME = 660          -- an AuthCode: 10 minutes, and a margin
_M.TICKET_LIFETIME = TICKET_LIFETIME

local LOCK_LEASE = 10     -- seconds an update of a record may hold its lock
local LOCK_WAIT = 5       -- seconds to wait for that lock before giving up

-- what a corpid may be: WeCom's are letters and digits (an encrypted one
-- may hold '_' or '-'); no control character, at most MAX_CORPID bytes
local MAX_CORPID = 128
local function is_corpid(v)
    return type(v) == "string" and v ~= "" and #v <= MAX_CORPID and not str_find(v, "%c")
end
_M.CORPID = errors.kind("a corpid (a non-empty string without control characters, at most "
    .. MAX_CORPID .. " bytes)", is_corpid)

local function part(v)
    return url.escape(tostring(v))
end

-- ns(suite_id, base_url) -> the key prefix of a suite
function _M.ns(suite_id, server)
    local s = "wecom:suite:" .. part(suite_id)
    if server ~= nil and server ~= DEFAULT_SERVER then
        s = s .. "@" .. core.sha1_hex(server):sub(1, 12)
    end
    return s
end

-- provider_key(corpid, secret, base_url) -> the key of a provider token
-- (a prefix of the secret's SHA-1, so a rotated secret gets its own)
function _M.provider_key(corpid, secret, server)
    local s = "wecom:provider:" .. part(corpid) .. ":" .. core.sha1_hex(secret):sub(1, 16)
    if server ~= nil and server ~= DEFAULT_SERVER then
        s = s .. "@" .. core.sha1_hex(server):sub(1, 12)
    end
    return s .. ":token"
end

function _M.ticket_key(ns) return ns .. ":ticket" end
function _M.token_key(ns) return ns .. ":token" end
function _M.corp_key(ns, corpid) return ns .. ":corp:" .. part(corpid) end
function _M.corp_token_key(ns, corpid) return ns .. ":corp:" .. part(corpid) .. ":token" end

local function corps_prefix(ns) return ns .. ":corp:" end

local function store_error(what, err)
    if errors.is_error(err) then
        return err
    end
    return errors.new("store", "store " .. what .. " failed: " .. tostring(err or "not applied"))
end

-- get(store, key) -> value, expires_at | nil (missing) | nil, err
local function get(store, key)
    local ok, value, expires_at = pcall(store.get, store, key)
    if not ok then
        return nil, store_error("get", value)
    end
    if value == nil then
        if expires_at ~= nil then
            return nil, store_error("get", expires_at)
        end
        return nil
    end
    return value, expires_at
end

-- what a store write's pcall returned -> true | nil, err
local function written(what, ok, done, err)
    if not ok then
        return nil, store_error(what, done)
    end
    if not done then
        return nil, store_error(what, err)
    end
    return true
end

local function set(store, key, value, expires_at)
    return written("set", pcall(store.set, store, key, value, expires_at))
end

-- the error for a store without a method a suite needs (for what)
local function no_method(name, what)
    return errors.new("store", "the store has no " .. name .. " method: a suite " .. what
        .. " with it (docs/stores.md, \"Writing your own store\")")
end

-- set_durable(store, key, value) -> true | nil, err
local function set_durable(store, key, value)
    if type(store.set_durable) ~= "function" then
        return nil, no_method("set_durable", "keeps permanent codes")
    end
    return written("set_durable", pcall(store.set_durable, store, key, value))
end

-- list_durable(store, prefix) -> { key, ... } | nil, err
local function list_durable(store, prefix)
    if type(store.list_durable) ~= "function" then
        return nil, no_method("list_durable", "lists its corps")
    end
    local ok, keys, err = pcall(store.list_durable, store, prefix)
    if not ok then
        return nil, store_error("list_durable", keys)
    end
    if type(keys) ~= "table" then
        return nil, store_error("list_durable", err)
    end
    return keys
end

local function delete(store, key)
    local ok, removed, err = pcall(store.delete, store, key)
    if not ok then
        return nil, store_error("delete", removed)
    elseif removed == nil and err ~= nil then
        return nil, store_error("delete", err)
    end
    return true
end
_M.delete = delete

-- Runs fn() holding the store's lock on key (waiting for it up to LOCK_WAIT
-- seconds; yields inside wecom.parallel) -> what fn returns | nil, err
local function with_lock(store, key, fn)
    local give_up = core.monotonic() + LOCK_WAIT
    local delay = 0.005
    while true do
        local ok, locked, lerr = pcall(store.lock, store, key, LOCK_LEASE)
        if not ok or (locked == nil and lerr ~= nil) then
            return nil, store_error("lock", ok and lerr or locked)
        end
        if locked then
            local fok, a, b = pcall(fn)
            pcall(store.unlock, store, key)
            if not fok then
                return nil, store_error("update", a)
            end
            return a, b
        end
        if core.monotonic() > give_up then
            return nil, errors.new("store", "timed out waiting for the lock of a suite's record")
        end
        parallel.sleep(delay)
        delay = math_min(delay * 2, 0.1)
    end
end

---------------------------------------------------------------------------
-- suite_ticket
---------------------------------------------------------------------------

-- set_ticket(store, ns, ticket, issued_at) -> true | false (an older ticket
-- than the stored one: a late or repeated push) | nil, err
-- issued_at: when WeCom issued it (the event's TimeStamp, never later than
-- now: a clock ahead of ours must not make a ticket live longer).
function _M.set_ticket(store, ns, ticket, issued_at)
    local now = core.now()
    if issued_at == nil or issued_at > now then
        issued_at = now
    end
    local expires_at = issued_at + TICKET_LIFETIME
    if expires_at <= now then
        return false
    end
    local key = _M.ticket_key(ns)
    return with_lock(store, key, function()
        local old, old_expires_at = get(store, key)
        if old ~= nil and type(old_expires_at) == "number" and old_expires_at > expires_at then
            return false
        end
        return set(store, key, ticket, expires_at)
    end)
end

-- ticket(store, ns) -> ticket, expires_at | nil | nil, err
function _M.ticket(store, ns)
    local value, expires_at = get(store, _M.ticket_key(ns))
    if value == nil then
        return nil, expires_at   -- a miss, or the store's error
    end
    if type(value) ~= "string" or value == "" or type(expires_at) ~= "number" or expires_at <= core.now() then
        return nil
    end
    return value, expires_at
end

---------------------------------------------------------------------------
-- authorizations
---------------------------------------------------------------------------

-- the fields of a record besides the code; what corps() hands out
local RECORD_FIELDS = { "corpid", "corp_name", "agentid", "state", "auth_type", "installed_at", "updated_at" }
_M.RECORD_FIELDS = RECORD_FIELDS

local function decode_record(corpid, value)
    local rec = json.decode_object(value)
    if type(rec) ~= "table" or rec.corpid ~= corpid or type(rec.permanent_code) ~= "string"
        or rec.permanent_code == "" then
        return nil, errors.new("store", "the stored authorization of a corp is damaged")
    end
    if rec.agentid ~= nil and not errors.is_integer(rec.agentid, 0, 2 ^ 53) then
        rec.agentid = nil
    end
    return rec
end

-- corp(store, ns, corpid) -> record | nil (not authorized) | nil, err
-- record: { corpid, permanent_code, corp_name?, agentid?, state?, ... }
function _M.corp(store, ns, corpid)
    local value, err = get(store, _M.corp_key(ns, corpid))
    if value == nil then
        return nil, err
    end
    return decode_record(corpid, value)
end

-- put_corp(store, ns, record) -> true | nil, err
-- Stores the authorization as a durable entry: that lists the corp too.
function _M.put_corp(store, ns, record)
    local text, jerr = json.encode(record)
    if not text then
        return nil, errors.new("store", "cannot encode an authorization (" .. tostring(jerr) .. ")")
    end
    return set_durable(store, _M.corp_key(ns, record.corpid), text)
end

-- forget_corp(store, ns, corpid) -> true | nil, err
-- Drops the corp's authorization (and so its listing) and its tokens.
function _M.forget_corp(store, ns, corpid, ticket_keys)
    local ok, err = delete(store, _M.corp_key(ns, corpid))
    if not ok then
        return nil, err
    end
    local token_key = _M.corp_token_key(ns, corpid)
    for _, key in ipairs(ticket_keys or {}) do
        delete(store, key)
    end
    return delete(store, token_key)
end

-- the corpid a listed key names, or nil for a key that is no corp's
-- authorization (it has a further ":" part, or is no corpid)
local function listed_corpid(key, prefix)
    local escaped = str_sub(key, #prefix + 1)
    if str_find(escaped, ":", 1, true) then
        return nil
    end
    local id = url.unescape(escaped)
    if not is_corpid(id) then
        return nil
    end
    return id
end

-- corpids(store, ns) -> iterator of the authorized corps' corpids (in key
-- order, the listing read at the first call); a store failure raises the
-- error object, as every iterator of the SDK does
function _M.corpids(store, ns)
    local prefix = corps_prefix(ns)
    local keys, i
    return function()
        if not keys then
            local err
            keys, err = list_durable(store, prefix)
            if not keys then
                error(err, 0)
            end
            i = 0
        end
        while i < #keys do
            i = i + 1
            local id = listed_corpid(keys[i], prefix)
            if id then
                return id
            end
        end
    end
end

---------------------------------------------------------------------------
-- AuthCodes already exchanged
---------------------------------------------------------------------------

local function done_key(ns, auth_code)
    return ns .. ":done:" .. core.sha1_hex(auth_code)
end

-- exchanged(store, ns, auth_code) -> corpid | nil
function _M.exchanged(store, ns, auth_code)
    local value = get(store, done_key(ns, auth_code))
    return value
end

function _M.mark_exchanged(store, ns, auth_code, corpid)
    return set(store, done_key(ns, auth_code), corpid, core.now() + AUTH_CODE_LIFETIME)
end

-- the record's public fields (no permanent code) as a new table
function _M.public(rec)
    local t = {}
    for _, k in ipairs(RECORD_FIELDS) do
        t[k] = rec[k]
    end
    return t
end

return _M
