-- wecom.api.service: the /cgi-bin/service/* endpoints of a service provider
-- (reference wecom-provider-api.md §1, §2, §6.2): the calls, their
-- arguments and the checks of their answers.  wecom.suite and
-- wecom.provider wire them up and keep what they return.
--
-- Each function takes the plain client that carries the suite or provider
-- token (wecom.client.build) and returns data | nil, err; a bad argument
-- raises, naming the call as users write it (`where`).

local type = type

local client = require "wecom.client"
local core = require "wecom.core"
local errors = require "wecom.errors"
local json = require "wecom.json"
local response = require "wecom.response"
local url = require "wecom.url"

local _M = {}

local S = "/cgi-bin/service/"
local PATH = {
    suite_token = S .. "get_suite_token",
    provider_token = S .. "get_provider_token",
    corp_token = S .. "get_corp_token",
    pre_auth_code = S .. "get_pre_auth_code",
    set_session_info = S .. "set_session_info",
    permanent_code = S .. "v2/get_permanent_code",
    auth_info = S .. "get_auth_info",
    customized_auth_url = S .. "get_customized_auth_url",
    gettoken = "/cgi-bin/gettoken",
}
_M.PATH = PATH

-- WeCom's install page and its host (web_base_url replaces the host)
_M.WEB_BASE_URL = "https://open.work.weixin.qq.com"
local INSTALL_PAGE = "/3rdapp/install"

-- What a permanent code or a corpid may be: WeCom's are at most 512 bytes;
-- anything else an answer holds is not one.
local MAX_CREDENTIAL = 512
local MAX_ID = 128

local function text_field(t, name, max, path)
    local v = type(t) == "table" and t[name] or nil
    if type(v) ~= "string" or v == "" or #v > max then
        return nil, errors.new("decode", "response has no usable '" .. name .. "'", { path = path })
    end
    return v
end

-- state of an install link or a QR code: letters and digits
local function state_kind(max)
    return errors.kind("at most " .. max .. " letters and digits", function(v)
        return type(v) == "string" and #v <= max and v:match("^[A-Za-z0-9]*$") ~= nil
    end)
end

local AUTH_TYPE = errors.kind("0 (formal) or 1 (test install)", function(v) return v == 0 or v == 1 end)
local APPIDS = errors.kind("a list of app ids (integers)", function(v)
    if type(v) ~= "table" then
        return false
    end
    for i = 1, #v do
        if not errors.is_integer(v[i], 0, 2 ^ 53) then
            return false
        end
    end
    return true
end)

---------------------------------------------------------------------------
-- Installs (§2)
---------------------------------------------------------------------------

-- pre_auth_code(api) -> pre_auth_code, expires_at | nil, err
function _M.pre_auth_code(api)
    local path = PATH.pre_auth_code
    local data, err = client.request(api, "GET", path)
    if not data then
        return nil, err
    end
    return client.credential_from(data, "pre_auth_code", "GET", path)
end

local SESSION_OPTIONS = { auth_type = AUTH_TYPE, appid = APPIDS }

-- set_session_info(api, where, pre_auth_code, { auth_type =, appid = }) -> true | nil, err
function _M.set_session_info(api, where, code, opts)
    errors.need(where, "pre_auth_code", code, errors.string, 3)
    errors.options(where, opts, SESSION_OPTIONS, nil, 3)
    local info = { auth_type = opts.auth_type or 0 }
    if opts.appid ~= nil then
        info.appid = json.array(opts.appid)
    end
    return response.done(client.request(api, "POST", PATH.set_session_info,
        nil, { pre_auth_code = code, session_info = info }))
end

local REDIRECT = errors.kind("an absolute http(s) URL", function(v)
    return type(v) == "string" and v:match("^https?://[^/?#%s]") ~= nil and not v:find("[%s%c]")
end)
local INSTALL_OPTIONS = { redirect_uri = REDIRECT, state = state_kind(128), test = errors.boolean }

-- install_options(where, opts) -> opts (checked before any request)
function _M.install_options(where, opts)
    errors.options(where, opts, INSTALL_OPTIONS, { "redirect_uri" }, 3)
    return opts
end

-- install_link(web_base_url, suite_id, pre_auth_code, opts) -> the install page's URL
function _M.install_link(web_base_url, suite_id, code, opts)
    return (web_base_url or _M.WEB_BASE_URL) .. INSTALL_PAGE .. "?" .. url.encode_query {
        suite_id = suite_id, pre_auth_code = code, redirect_uri = opts.redirect_uri, state = opts.state or "",
    }
end

-- permanent_code(api, auth_code) -> { permanent_code, corpid, answer } | nil, err
-- (v2: the short answer WeCom recommends while the install is going on)
-- The AuthCode is single use: the call is never resent after a timeout.
function _M.permanent_code(api, auth_code)
    local path = PATH.permanent_code
    local data, err = client.request(api, "POST", path, nil, { auth_code = auth_code })
    if not data then
        return nil, err
    end
    local code, cerr = text_field(data, "permanent_code", MAX_CREDENTIAL, path)
    if not code then
        return nil, cerr
    end
    local corpid, ierr = text_field(data.auth_corp_info, "corpid", MAX_ID, path)
    if not corpid or corpid:find("%c") then
        return nil, ierr or errors.new("decode", "response has no usable 'corpid'", { path = path })
    end
    data.permanent_code = nil     -- the caller keeps it; the answer goes on without it
    return { permanent_code = code, corpid = corpid, answer = data }
end

-- auth_info(api, corpid, permanent_code) -> get_auth_info's answer | nil, err
function _M.auth_info(api, corpid, permanent_code)
    return client.request(api, "POST", PATH.auth_info, nil,
        { auth_corpid = corpid, permanent_code = permanent_code }, { idempotent = true })
end

-- agentid(answer) -> the app's agentid in the authorizing corp, or nil
function _M.agentid(answer)
    local info = type(answer) == "table" and answer.auth_info
    local agents = type(info) == "table" and info.agent
    local first = type(agents) == "table" and agents[1]
    local id = type(first) == "table" and first.agentid
    if errors.is_integer(id, 0, 2 ^ 53) then
        return id
    end
    return nil
end

-- corp_name(answer) -> auth_corp_info.corp_name, or nil
function _M.corp_name(answer)
    local info = type(answer) == "table" and answer.auth_corp_info
    local name = type(info) == "table" and info.corp_name
    if type(name) == "string" and #name <= 1024 then
        return name
    end
    return nil
end

---------------------------------------------------------------------------
-- Provider (§2.8, §6.2)
---------------------------------------------------------------------------

local TEMPLATE_IDS = errors.kind("a list of 1 to 9 代开发 template ids (\"dk...\")", function(v)
    if type(v) ~= "table" or #v < 1 or #v > 9 then
        return false
    end
    for i = 1, #v do
        if type(v[i]) ~= "string" or v[i] == "" then
            return false
        end
    end
    return true
end)
local CUSTOMIZED_OPTIONS = { templateid_list = TEMPLATE_IDS, state = state_kind(32) }

-- customized_auth_url(api, where, { templateid_list, state? }) -> qrcode_url, expires_at | nil, err
function _M.customized_auth_url(api, where, opts)
    errors.options(where, opts, CUSTOMIZED_OPTIONS, { "templateid_list" }, 3)
    local ids = {}
    for i = 1, #opts.templateid_list do
        ids[i] = opts.templateid_list[i]
    end
    local path = PATH.customized_auth_url
    local data, err = client.request(api, "POST", path, nil,
        { templateid_list = ids, state = opts.state }, { idempotent = true })
    if not data then
        return nil, err
    end
    local link, lerr = text_field(data, "qrcode_url", 4096, path)
    if not link then
        return nil, lerr
    end
    local expires_in = data.expires_in
    if type(expires_in) ~= "number" or expires_in <= 0 then
        return nil, errors.new("decode", "response has no usable 'expires_in'", { path = path })
    end
    return link, core.now() + expires_in
end

return _M
