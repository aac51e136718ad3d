-- wecom.api.identity (reference §5, §2.3): OAuth2 web login URLs, code -> user,
-- mini-program sessions and their transfer to a downstream corp, and the
-- `CorpId/userid` ids that 上下游/企业互联 logins produce.
--
-- The functions take the client as their first argument; the client wires
-- them up as `app:oauth_url`, `app:user_by_code`, `app:jscode2session`,
-- `down:transfer_session` and `wecom.split_userid`.

local type = type
local concat = table.concat
local format = string.format
local floor = math.floor

local errors = require "wecom.errors"
local url = require "wecom.url"

local _M = {}

-- WeCom's OAuth authorize page: its host (app.web_base_url replaces it),
-- and the path on it
local WEB_BASE_URL = "https://open.weixin.qq.com"
local AUTHORIZE_PATH = "/connect/oauth2/authorize"
_M.WEB_BASE_URL = WEB_BASE_URL

local PATH = {
    user_by_code = "/cgi-bin/auth/getuserinfo",
    jscode2session = "/cgi-bin/miniprogram/jscode2session",
    transfer_session = "/cgi-bin/miniprogram/transfer_session",
}
_M.PATH = PATH

local SCOPES = { snsapi_base = true, snsapi_privateinfo = true }
local MAX_STATE = 128

-- a wrong argument is the caller's bug: it raises, naming the call as users
-- write it (wecom:oauth_url, wecom.split_userid)
local need, usage = errors.need, errors.usage
local STRING = errors.string

-- split_userid(s) -> corpid, userid | nil, err
-- "wwCORP/zhangsan" -> "wwCORP", "zhangsan" (split at the first '/');
-- anything else ("zhangsan", "/x", "x/", "") -> nil and a "decode" error.
-- A non-string raises.
function _M.split_userid(s)
    need("wecom.split_userid", "userid", s, errors.any_string)
    local corpid, userid = s:match("^([^/]+)/(.+)$")
    if not corpid then
        return nil, errors.new("decode", "'" .. s .. "' is not of the form CorpId/userid")
    end
    return corpid, userid
end

-- The options of an OAuth link, checked the same for every app kind
-- (wecom.api.identity3rd's suite:oauth_url too)
_M.REDIRECT_URI = errors.kind("an absolute http(s) URL", function(v)
    return type(v) == "string" and v:match("^https?://[^/?#]") ~= nil
end)
_M.SCOPE = errors.kind("snsapi_base or snsapi_privateinfo", function(v) return SCOPES[v] == true end)
_M.STATE = errors.kind("at most " .. MAX_STATE .. " letters and digits", function(v)
    return type(v) == "string" and #v <= MAX_STATE and v:match("^[A-Za-z0-9]*$") ~= nil
end)

local OAUTH_OPTIONS = {
    redirect_uri = _M.REDIRECT_URI,
    scope = _M.SCOPE,
    state = _M.STATE,
    agentid = errors.kind("an integer >= 0", function(v)
        return errors.id[2](v) or (type(v) == "string" and v:match("^%d+$") ~= nil)
    end),
}
local OAUTH_REQUIRED = { "redirect_uri" }

-- oauth_url(app, { redirect_uri, state?, scope = "snsapi_base", agentid? }) -> url
function _M.oauth_url(app, opts)
    local where = "wecom:oauth_url"
    errors.options(where, opts, OAUTH_OPTIONS, OAUTH_REQUIRED)
    local redirect_uri = opts.redirect_uri
    local scope = opts.scope or "snsapi_base"
    local state = opts.state
    local agentid = opts.agentid
    if agentid == nil then
        agentid = app.agentid
    end
    if type(agentid) == "number" and agentid >= 0 and agentid == floor(agentid) then
        agentid = format("%d", agentid)
    end
    if scope == "snsapi_privateinfo" and agentid == nil then
        -- WeCom silently downgrades to snsapi_base without an agentid
        usage(where, "scope snsapi_privateinfo needs an agentid")
    end
    local corpid = need(where, "the app's corpid", app.corpid, STRING)

    return _M.authorize_url(app.web_base_url or WEB_BASE_URL, corpid, redirect_uri, scope, state, agentid)
end

-- authorize_url(base, appid, redirect_uri, scope, state?, agentid?) -> the
-- link to the OAuth authorize page at base (scheme and host)
function _M.authorize_url(base, appid, redirect_uri, scope, state, agentid)
    local q = {
        "appid=", url.escape(appid),
        "&redirect_uri=", url.escape(redirect_uri),
        "&response_type=code",
        "&scope=", scope,
    }
    if state and state ~= "" then
        q[#q + 1] = "&state=" .. state
    end
    if agentid ~= nil then
        q[#q + 1] = "&agentid=" .. agentid
    end
    return base .. AUTHORIZE_PATH .. "?" .. concat(q) .. "#wechat_redirect"
end

-- session_answer(path, data, err) -> data | nil, err: the answer of a
-- request to path, which must carry a userid and a session_key
-- (jscode2session, transfer_session)
function _M.session_answer(path, data, err)
    if not data then
        return nil, err
    end
    if type(data.userid) ~= "string" or type(data.session_key) ~= "string" then
        return nil, errors.new("decode", "answer has no userid/session_key", { path = path })
    end
    return data
end
local session_answer = _M.session_answer

-- user_by_code(app, code) -> { corpid, userid, raw } for members,
-- { openid, external_userid, raw } for visitors who are not.
function _M.user_by_code(app, code)
    need("wecom:user_by_code", "code", code, STRING)
    local data, err = app:get(PATH.user_by_code, { code = code })
    if not data then
        return nil, err
    end
    local result = { raw = data }
    if type(data.userid) == "string" and data.userid ~= "" then
        -- members of the app's own corp come back as a bare userid
        local corpid, userid = app.corpid, data.userid
        if data.userid:find("/", 1, true) then
            corpid, userid = _M.split_userid(data.userid)
            if not corpid then
                return nil, errors.new("decode", "malformed userid in the answer", { path = PATH.user_by_code })
            end
        end
        result.corpid = corpid
        result.userid = userid
        result.user_ticket = data.user_ticket
    elseif type(data.openid) == "string" then
        result.openid = data.openid
        result.external_userid = data.external_userid
    else
        return nil, errors.new("decode", "answer has neither userid nor openid", { path = PATH.user_by_code })
    end
    return result
end

-- jscode2session(app, js_code) -> { corpid, userid, session_key }
function _M.jscode2session(app, js_code)
    need("wecom:jscode2session", "js_code", js_code, STRING)
    local data, err = session_answer(PATH.jscode2session,
        app:get(PATH.jscode2session, { js_code = js_code, grant_type = "authorization_code" }))
    if not data then
        return nil, err
    end
    return { corpid = data.corpid, userid = data.userid, session_key = data.session_key }
end

-- transfer_session(down, userid, session_key) -> { userid, session_key } in the downstream corp
function _M.transfer_session(down, userid, session_key)
    need("wecom:transfer_session", "userid", userid, STRING)
    need("wecom:transfer_session", "session_key", session_key, STRING)
    -- a session key is spent by the exchange: not safe to resend blindly
    local data, err = session_answer(PATH.transfer_session,
        down:post(PATH.transfer_session, { userid = userid, session_key = session_key }))
    if not data then
        return nil, err
    end
    return { userid = data.userid, session_key = data.session_key }
end

return _M
