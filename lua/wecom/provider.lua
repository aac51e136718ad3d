-- wecom.provider: a service provider's own identity (服务商): the provider
-- token and the calls made with it (reference wecom-provider-api.md §1.3,
-- §2.8, §6.2).
--
--   local provider = wecom.provider{ corpid = "wwPROVIDER", provider_secret = "..." }
--   provider:token()                          -- provider_access_token
--   provider:customized_auth_url{ templateid_list = { "dk..." }, state = "s1" }
--   provider:corpid_to_opencorpid("wwCORP")   -- wecom.api.identity3rd
--   provider:finish_external_userid_migration("wwCORP")
--   provider:get(path, query) / provider:post(path, body, query)
--
-- The token is cached in the store like every other (single flight,
-- refresh ahead, a rejected one dropped only if it is still the cached
-- one, 40082/42009 refreshed once); the secret lives only in closures.

local setmetatable = setmetatable

local client = require "wecom.client"
local errors = require "wecom.errors"
local options = require "wecom.options"
local records = require "wecom.suite.records"
local scrub = require "wecom.scrub"
local service = require "wecom.api.service"

local _M = {}

local mt = {}

-- methods written by the endpoint modules, loaded on first use (as
-- wecom.client's LAZY_METHODS); they raise naming wecom.provider:<name>
local ID3 = "wecom.api.identity3rd"
mt.__index = client.lazy_index(mt, {
    corpid_to_opencorpid = { ID3, "corpid_to_opencorpid" },
    finish_external_userid_migration = { ID3, "finish_external_userid_migration" },
})

function mt.__tostring(self)
    return "wecom.provider(corpid=" .. self.corpid .. ")"
end

local PROVIDER_OPTIONS = {
    { "corpid", errors.string, required = true },
    { "provider_secret", errors.string, required = true },
}

-- provider{ corpid, provider_secret [, and the options of wecom.options] } -> provider
function _M.new(opts)
    local o = options.resolve("wecom.provider", opts, PROVIDER_OPTIONS)
    local self = setmetatable(options.settings_into({
        corpid = o.corpid,
        transport = options.new_transport(o),
    }, o), mt)
    local secret = o.provider_secret
    local path = service.PATH.provider_token
    self._api = client.build("plain", options.settings_into({
        kind = "provider",
        name = "wecom.provider(corpid=" .. o.corpid .. ")",
        corpid = o.corpid,
        token_key = records.provider_key(o.corpid, secret, o.base_url),
        token_param = "provider_access_token",
        transport = self.transport,
        scrub = scrub.new(secret),
        fetch_token = function(api)
            return client.credential(api, "POST", path, nil, { corpid = o.corpid, provider_secret = secret },
                "provider_access_token", false)
        end,
    }, self))
    return self
end

-- provider:token([{ force = true }]) -> provider_access_token, expires_at | nil, err
-- provider:get(path [, query [, opts]]) / provider:post(path, body [, query [, opts]])
-- -> data | nil, err: any provider-token endpoint, provider_access_token injected
client.plain_front(mt)

-- provider:customized_auth_url{ templateid_list = { "dk..." } [, state] }
-- -> qrcode_url, expires_at | nil, err   (the 代开发 install QR code's link, 10 days)
function mt.customized_auth_url(self, opts)
    return service.customized_auth_url(self._api, "wecom.provider:customized_auth_url", opts)
end

return _M
