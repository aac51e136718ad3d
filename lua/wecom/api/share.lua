-- The corps an app is shared to (list_app_share_info): `app:shared_corps`.
--
-- Both 上下游 (business_type 1) and 企业互联 (0) share apps this way; each
-- record names the downstream corp and the app's agentid INSIDE that corp,
-- which is what app:downstream{} needs.  app:each_shared_corp (wecom.client)
-- walks the same list concurrently.

local pairs = pairs

local errors = require "wecom.errors"
local pager = require "wecom.pager"
local response = require "wecom.response"

local _M = {}

local PATH = "/cgi-bin/corpgroup/corp/list_app_share_info"
local MAX_LIMIT = 100

local BUSINESS_TYPE = errors.kind("0 (企业互联) or 1 (上下游)", function(v) return v == 0 or v == 1 end)
local LIMIT = errors.kind("an integer from 1 to " .. MAX_LIMIT, function(v)
    return errors.is_integer(v, 1, MAX_LIMIT)
end)

local OPTIONS = {
    business_type = BUSINESS_TYPE,
    corpid = errors.string,      -- only this downstream corp
    agentid = errors.id,         -- default: the app's agentid
    limit = LIMIT,               -- page size
}

-- the options of app:each_shared_corp: these and its concurrency
_M.EACH_OPTIONS = { concurrency = errors.positive }
for k, v in pairs(OPTIONS) do
    _M.EACH_OPTIONS[k] = v
end

-- shared_corps(app [, { business_type = 0|1, corpid =, agentid =, limit = 1..100 }])
--   -> iterator of { corpid, corp_name, agentid }
function _M.shared_corps(app, opts)
    local where = "wecom:shared_corps"
    if opts ~= nil then
        errors.options(where, opts, OPTIONS)
    else
        opts = {}
    end
    local business_type = opts.business_type or 0
    local limit = opts.limit or MAX_LIMIT
    local corpid = opts.corpid
    local agentid = opts.agentid or app.agentid
    if agentid == nil then
        errors.usage(where, "the app needs an agentid (wecom.new{ agentid = ... })")
    end

    local read = { idempotent = true }
    return pager.iterate(function(cursor)
        local data, err = app:post(PATH, {
            agentid = agentid,
            business_type = business_type,
            corpid = corpid,
            limit = limit,
            cursor = cursor,
        }, nil, read)
        if not data then
            return nil, err
        end
        local list, lerr = response.list(data, "corp_list", PATH)
        if not list then
            return nil, lerr
        end
        if data.ending == 1 or data.ending == true then
            return list, nil
        end
        return list, data.next_cursor
    end, "shared_corps")
end

return _M
