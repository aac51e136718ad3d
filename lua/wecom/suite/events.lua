-- wecom.suite.events: the bookkeeping suite:receive does for the InfoType
-- events WeCom posts to the 指令回调 URL (reference wecom-provider-api.md
-- §3.3-3.4).  Every other event (数据回调 messages, share_agent_change,
-- change_contact, change_editon, ...) passes through untouched.
--
--   suite_ticket          the ticket is stored (a late, older push never
--                         replaces a newer one)
--   create_auth           the AuthCode is exchanged for the permanent code
--                         and the auth info (suite:authorize); event.auth
--   reset_permanent_code  the same for a 代开发 app's new secret; event.auth
--   change_auth           the stored auth info is read again; event.auth_info
--   cancel_auth           the corp and its tokens are forgotten
--
-- WeCom may post an event again (no answer within its deadline): an
-- AuthCode already exchanged is not exchanged twice; event.auth is then
-- the stored authorization (without the permanent code).

local tonumber = tonumber
local type = type

local errors = require "wecom.errors"
local records = require "wecom.suite.records"

local _M = {}

local MAX_TEXT = 512     -- SuiteTicket, AuthCode: at most 512 bytes (reference §3.3, §2.5)

local function field(event, name)
    local v = event[name]
    if type(v) ~= "string" or v == "" or #v > MAX_TEXT then
        return nil, errors.new("callback", event.type .. " event without a usable " .. name)
    end
    return v
end

local function timestamp(v)
    local n = tonumber(v)
    if n and n > 0 and n < 2 ^ 40 then
        return n
    end
    return nil
end

local function exchange(suite, event)
    local code, err = field(event, "AuthCode")
    if not code then
        return nil, err
    end
    local done = records.exchanged(suite.store, suite._ns, code)
    if done then
        local rec = records.corp(suite.store, suite._ns, done)
        event.auth = rec and records.public(rec) or { corpid = done }
        event.duplicate = true
        return true
    end
    local auth
    auth, err = suite:authorize(code)
    if not auth then
        return nil, err
    end
    event.auth = auth
    return true
end

local HANDLERS = {
    suite_ticket = function(suite, event)
        local ticket, err = field(event, "SuiteTicket")
        if not ticket then
            return nil, err
        end
        local ok, serr = records.set_ticket(suite.store, suite._ns, ticket, timestamp(event.TimeStamp))
        if ok == nil then
            return nil, serr
        end
        return true
    end,

    create_auth = exchange,
    reset_permanent_code = exchange,

    change_auth = function(suite, event)
        local corpid, err = field(event, "AuthCorpId")
        if not corpid then
            return nil, err
        end
        local rec
        rec, err = records.corp(suite.store, suite._ns, corpid)
        if not rec then
            -- a corp this store never saw (installed before the store
            -- was): nothing to refresh
            if err then
                return nil, err
            end
            return true
        end
        local info
        info, err = suite:auth_info(corpid)
        if not info then
            return nil, err
        end
        event.auth_info = info
        return true
    end,

    cancel_auth = function(suite, event)
        local corpid, err = field(event, "AuthCorpId")
        if not corpid then
            return nil, err
        end
        return suite:forget(corpid)
    end,
}

-- bookkeeping(suite, event) -> true | nil, err
-- Only an event of this suite (its SuiteId) is kept; an InfoType event of
-- another suite (a shared URL) passes through.
function _M.bookkeeping(suite, event)
    local info_type = event.InfoType
    local handler = type(info_type) == "string" and HANDLERS[info_type]
    if not handler or event.SuiteId ~= suite.suite_id then
        return true
    end
    return handler(suite, event)
end

return _M
