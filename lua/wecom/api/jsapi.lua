-- wecom.api.jsapi: JS-SDK signing (reference §6): `wx.config` and `wx.agentConfig` parameters
-- for a page, signed with a downstream corp's tickets.
--
-- For apps shared through 上下游/企业互联 both tickets are fetched with the
-- DOWNSTREAM token and agentConfig names the downstream corpid and agentid;
-- the functions below take that downstream client.  Tickets come from
-- `client:ticket("jsapi" | "agent_config")`, which caches them (they are
-- rate-limited to a few hundred fetches an hour).

local type = type
local format = string.format
local os_time = os.time

local core = require "wecom.core"
local errors = require "wecom.errors"

local _M = {}

local NONCE_LENGTH = 16

local PAGE_URL = errors.kind("the page's absolute http(s) URL", function(v)
    return type(v) == "string" and v:match("^https?://[^/?#]") ~= nil
end)

-- opts.timestamp / opts.nonce pin the otherwise fresh values (tests, replays).
local STAMP_OPTIONS = {
    timestamp = errors.id,
    nonce = errors.kind("a non-empty string of letters and digits", function(v)
        return type(v) == "string" and v:match("^[A-Za-z0-9]+$") ~= nil
    end),
}

-- the arguments of config and agent_config (level 3: they call this)
local function check(where, url, opts)
    errors.need(where, "url", url, PAGE_URL, 3)
    if opts ~= nil then
        errors.options(where, opts, STAMP_OPTIONS, nil, 3)
    end
    local timestamp = opts and opts.timestamp or os_time()
    local nonce = opts and opts.nonce or core.nonce(NONCE_LENGTH)
    return timestamp, nonce
end

-- sign(ticket, nonce, timestamp, url) -> lower-hex sha1 (url cut at '#')
function _M.sign(ticket, nonce, timestamp, url)
    return core.jsapi_signature(ticket, nonce, format("%d", timestamp), url)
end

local function signed(client, kind, url, timestamp, nonce)
    local ticket, err = client:ticket(kind)
    if not ticket then
        return nil, err
    end
    return _M.sign(ticket, nonce, timestamp, url)
end

-- config(down, url [, opts]) -> { appId, timestamp, nonceStr, signature } for wx.config
function _M.config(client, url, opts)
    local timestamp, nonce = check("wecom:jsapi_config", url, opts)
    local signature, err = signed(client, "jsapi", url, timestamp, nonce)
    if not signature then
        return nil, err
    end
    return {
        appId = client.corpid,
        timestamp = timestamp,
        nonceStr = nonce,
        signature = signature,
    }
end

-- agent_config(down, url [, opts]) -> { corpid, agentid, timestamp, nonceStr, signature }
-- for wx.agentConfig
function _M.agent_config(client, url, opts)
    local where = "wecom:agent_config"
    local timestamp, nonce = check(where, url, opts)
    local agentid = client.agentid
    if agentid == nil then
        errors.usage(where, "the client has no agentid")
    end
    local signature, err = signed(client, "agent_config", url, timestamp, nonce)
    if not signature then
        return nil, err
    end
    return {
        corpid = client.corpid,
        agentid = agentid,
        timestamp = timestamp,
        nonceStr = nonce,
        signature = signature,
    }
end

return _M
