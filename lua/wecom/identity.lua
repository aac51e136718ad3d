-- Identity (reference §5, §2.3): OAuth2 web login URLs, code -> user,
-- mini-program sessions and their transfer to a downstream corp, and the
-- `CorpId/userid` ids that 上下游/企业互联 logins produce.
--
-- The functions take the client as their first argument; the client wires
-- them up as `app:oauth_url`, `app:user_by_code`, `app:jscode2session`,
-- `down:transfer_session` and `wecom.split_userid`.

local type = type
local tostring = tostring
local concat = table.concat
local format = string.format
local byte = string.byte
local floor = math.floor
local errors = require "wecom.errors"
local argcheck = require "wecom.argcheck"

local _M = {}

local AUTHORIZE_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
local PATH = {
    user_by_code = "/cgi-bin/auth/getuserinfo",
    jscode2session = "/cgi-bin/miniprogram/jscode2session",
    transfer_session = "/cgi-bin/miniprogram/transfer_session",
}
_M.PATH = PATH

local SCOPES = { snsapi_base = true, snsapi_privateinfo = true }
local MAX_STATE = 128

-- a wrong argument is the caller's bug: it raises
local check = argcheck.new("wecom.")
local usage, need_string = check.usage, check.need_string

-- split_userid(s) -> corpid, userid
-- "wwCORP/zhangsan" -> "wwCORP", "zhangsan"; a plain id -> nil, id.
-- Malformed ids ("/x", "x/", "") -> nil, nil.
function _M.split_userid(s)
    if type(s) ~= "string" then
        usage("split_userid", "userid must be a string (got " .. type(s) .. ")")
    end
    local corpid, userid = s:match("^([^/]+)/(.+)$")
    if not corpid then
        return nil, errors.new("decode", "'" .. s .. "' is not of the form CorpId/userid")
    end
    return corpid, userid
end

-- RFC 3986: everything but the unreserved characters is percent-encoded.
local function escape_char(c)
    return format("%%%02X", byte(c))
end

function _M.url_encode(s)
    return (s:gsub("[^A-Za-z0-9%-%._~]", escape_char))
end

-- oauth_url(app, { redirect_uri, state?, scope = "snsapi_base", agentid? }) -> url
function _M.oauth_url(app, opts)
    if type(opts) ~= "table" then
        usage("oauth_url", "options must be a table (got " .. type(opts) .. ")")
    end
    local redirect_uri = need_string("oauth_url", "redirect_uri", opts.redirect_uri)
    if not redirect_uri:match("^https?://[^/?#]") then
        usage("oauth_url", "redirect_uri must be an absolute http(s) URL")
    end
    local scope = opts.scope or "snsapi_base"
    if not SCOPES[scope] then
        usage("oauth_url", "scope must be snsapi_base or snsapi_privateinfo (got " .. tostring(scope) .. ")")
    end
    local state = opts.state
    if state ~= nil then
        if type(state) ~= "string" or not state:match("^[A-Za-z0-9]*$") or #state > MAX_STATE then
            usage("oauth_url", "state must be at most " .. MAX_STATE .. " letters and digits")
        end
    end
    local agentid = opts.agentid
    if agentid == nil then
        agentid = app.agentid
    end
    if type(agentid) == "number" and agentid >= 0 and agentid == floor(agentid) then
        agentid = format("%d", agentid)
    elseif agentid ~= nil and not (type(agentid) == "string" and agentid:match("^%d+$")) then
        usage("oauth_url", "agentid must be an integer (got " .. type(agentid) .. ")")
    end
    if scope == "snsapi_privateinfo" and agentid == nil then
        -- WeCom silently downgrades to snsapi_base without an agentid
        usage("oauth_url", "scope snsapi_privateinfo needs an agentid")
    end
    local corpid = need_string("oauth_url", "the app's corpid", app.corpid)

    local q = {
        "appid=", _M.url_encode(corpid),
        "&redirect_uri=", _M.url_encode(redirect_uri),
        "&response_type=code",
        "&scope=", scope,
    }
    if state and state ~= "" then
        q[#q + 1] = "&state=" .. state
    end
    if agentid ~= nil then
        q[#q + 1] = "&agentid=" .. agentid
    end
    return AUTHORIZE_URL .. "?" .. concat(q) .. "#wechat_redirect"
end

-- user_by_code(app, code) -> { corpid, userid, raw } for members,
-- { openid, external_userid, raw } for visitors who are not.
function _M.user_by_code(app, code)
    need_string("user_by_code", "code", code)
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
    need_string("jscode2session", "js_code", js_code)
    local data, err = app:get(PATH.jscode2session, { js_code = js_code, grant_type = "authorization_code" })
    if not data then
        return nil, err
    end
    if type(data.userid) ~= "string" or type(data.session_key) ~= "string" then
        return nil, errors.new("decode", "answer has no userid/session_key", { path = PATH.jscode2session })
    end
    return { corpid = data.corpid, userid = data.userid, session_key = data.session_key }
end

-- transfer_session(down, userid, session_key) -> { userid, session_key } in the downstream corp
function _M.transfer_session(down, userid, session_key)
    need_string("transfer_session", "userid", userid)
    need_string("transfer_session", "session_key", session_key)
    -- a session key is spent by the exchange: not safe to resend blindly
    local data, err = down:post(PATH.transfer_session, { userid = userid, session_key = session_key })
    if not data then
        return nil, err
    end
    if type(data.userid) ~= "string" or type(data.session_key) ~= "string" then
        return nil, errors.new("decode", "answer has no userid/session_key", { path = PATH.transfer_session })
    end
    return { userid = data.userid, session_key = data.session_key }
end

return _M
