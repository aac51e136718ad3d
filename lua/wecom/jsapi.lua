-- JS-SDK signing (reference §6): `wx.config` and `wx.agentConfig` parameters
-- for a page, signed with a downstream corp's tickets.
--
-- For apps shared through 上下游/企业互联 both tickets are fetched with the
-- DOWNSTREAM token and agentConfig names the downstream corpid and agentid;
-- the functions below take that downstream client.  Tickets come from
-- `client:ticket("jsapi" | "agent_config")`, which caches them (they are
-- rate-limited to a few hundred fetches an hour).

local type = type
local format = string.format
local floor = math.floor
local os_time = os.time
local core = require "wecom.core"
local argcheck = require "wecom.argcheck"

local _M = {}

local NONCE_LENGTH = 16

-- check_url and stamp check for the public functions (check depth 1)
local usage = argcheck.new("wecom.").usage

local function check_url(fn, url)
    if type(url) ~= "string" then
        usage(fn, "url must be a string (got " .. type(url) .. ")", 1)
    end
    if not url:match("^https?://[^/?#]") then
        usage(fn, "url must be the page's absolute http(s) URL", 1)
    end
end

-- opts.timestamp / opts.nonce pin the otherwise fresh values (tests, replays).
local function stamp(fn, opts)
    if opts ~= nil and type(opts) ~= "table" then
        usage(fn, "options must be a table (got " .. type(opts) .. ")", 1)
    end
    local timestamp = opts and opts.timestamp
    local nonce = opts and opts.nonce
    if timestamp == nil then
        timestamp = os_time()
    elseif type(timestamp) ~= "number" or timestamp < 0 or timestamp ~= floor(timestamp) then
        usage(fn, "timestamp must be a non-negative integer", 1)
    end
    if nonce == nil then
        nonce = core.nonce(NONCE_LENGTH)
    elseif type(nonce) ~= "string" or not nonce:match("^[A-Za-z0-9]+$") then
        usage(fn, "nonce must be a non-empty string of letters and digits", 1)
    end
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
    check_url("jsapi_config", url)
    local timestamp, nonce = stamp("jsapi_config", opts)
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
    check_url("agent_config", url)
    local agentid = client.agentid
    if agentid == nil then
        usage("agent_config", "the client has no agentid")
    end
    local timestamp, nonce = stamp("agent_config", opts)
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
