-- wecom: Lua SDK for WeCom's cross-corporation APIs (上下游, 企业互联).
--
--   local wecom = require "wecom"
--   local app = wecom.new{ corpid = "ww...", secret = "...", agentid = 1000002 }
--   local data, err = app:get("/cgi-bin/corpgroup/corp/get_chain_list")

local require = require
local rawset = rawset
local setmetatable = setmetatable
local tostring = tostring

local client = require "wecom.client"
local errors = require "wecom.errors"
local json = require "wecom.json"
local parallel = require "wecom.parallel"

local _M = { _VERSION = require "wecom.version" }

_M.new = client.new
_M.errors = errors
_M.is_error = errors.is_error
_M.json_array = json.array
_M.null = json.null
_M.parallel = parallel.run

-- split_userid("wwCORP/zhangsan") -> "wwCORP", "zhangsan" | nil, err
_M.split_userid = require("wecom.api.identity").split_userid

-- wecom.store.<name>(...) -> store; each kind is loaded on first use.
local store_kinds = { memory = true, file = true, shdict = true, redis = true }
_M.store = setmetatable({}, {
    __index = function(t, name)
        if not store_kinds[name] then
            return nil
        end
        local module_name = "wecom.store." .. name
        local constructor = function(...)
            return require(module_name).new(...)
        end
        rawset(t, name, constructor)
        return constructor
    end,
})

-- wecom.suite{...} and wecom.provider{...}: a service provider's apps and
-- its own identity (loaded on first call)
_M.suite = function(opts)
    return require("wecom.suite").new(opts)
end
_M.provider = function(opts)
    return require("wecom.provider").new(opts)
end

-- wecom.callback and wecom.ngx are loaded on first use: a script that only
-- calls APIs never loads them.
setmetatable(_M, {
    __index = function(t, k)
        if k == "callback" or k == "ngx" then
            local module = require("wecom." .. k)
            rawset(t, k, module)
            return module
        end
        return nil
    end,
    __tostring = function()
        return "wecom " .. tostring(_M._VERSION)
    end,
})

return _M
