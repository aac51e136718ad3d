-- A stand-in for wecom.suite / wecom.provider objects, enough for the
-- functions of wecom.api.identity3rd: suite_id (web_base_url), and get/post
-- that send the suite_access_token (provider_access_token) over HTTPS to
-- the emulator, reading the answers as the client does (wecom.retry's
-- classify: the same error objects).  Tokens come from the emulator's
-- control API and get_suite_token / get_provider_token (helpers.provider).
--
--   local standin = require "helpers.provider_standin"
--   local suite = standin.suite(info, suite_fixture)
--   local provider = standin.provider(info, fx)

local json = require "wecom.json"
local pv = require "helpers.provider"
local retry = require "wecom.retry"
local transport = require "wecom.transport"
local url = require "wecom.url"

local _M = {}

-- requester(info, token_name, fetch_token): get/post sending token_name,
-- fetched once by fetch_token() and kept until forget_token()
local function requester(info, token_name, fetch_token)
    local t = transport.new { ca_file = info.ca_file, timeout = 10 }
    local self = { base_url = info.base_url, sent = {} }
    local token

    local function get_token()
        token = token or fetch_token()
        return token
    end

    function self.forget_token()
        token = nil
    end

    local function call(method, path, query, body)
        local q = {}
        for k, v in pairs(query or {}) do
            q[k] = v
        end
        q[token_name] = get_token()
        self.sent[#self.sent + 1] = { method = method, path = path, query = q }
        local payload, headers
        if method == "POST" then
            payload = assert(json.encode(body or {}))
            headers = { ["Content-Type"] = "application/json" }
        end
        local res, terr = t:request { method = method, url = info.base_url .. path .. "?" .. url.encode_query(q),
                                      headers = headers, body = payload }
        local data, err = retry.classify({ method = method, path = path, read = true,
                                           scrub = function(s) return s end }, res, terr)
        if data == nil then
            return nil, err
        end
        return data
    end

    function self.get(_, path, query)
        return call("GET", path, query)
    end

    function self.post(_, path, body, query)
        return call("POST", path, query, body)
    end

    return self
end

-- suite(info, s) -> a suite stand-in for the fixture's suite s
function _M.suite(info, s)
    local self = requester(info, "suite_access_token", function() return pv.suite_token(s) end)
    self.suite_id = s.suite_id
    self.web_base_url = info.base_url
    return self
end

-- provider(info, fx) -> a provider stand-in
function _M.provider(info, fx)
    local self = requester(info, "provider_access_token", function() return pv.provider_token(fx) end)
    self.corpid = fx.provider.corpid
    return self
end

return _M
