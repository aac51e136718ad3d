-- wecom.api.identity3rd: who a user is, for a provider's third-party app
-- (reference/wecom-provider-api.md §4, §6.2), and the provider-token
-- conversions of the account-ID upgrade.
--
--   suite:oauth_url{ redirect_uri, state?, scope? }  --> the OAuth link (appid = suite_id, no agentid)
--   suite:user_by_code(code)          --> { corpid, userid, open_userid, user_ticket?, raw } | { openid, raw }
--   suite:user_detail(user_ticket)    --> getuserdetail3rd's answer
--   suite:jscode2session(js_code)     --> { corpid, userid, open_userid, session_key }
--   suite:unionid_to_external_userid_3rd{ unionid, openid, corpid? } --> { { corpid, external_userid } }
--   provider:corpid_to_opencorpid(corpid)            --> open_corpid
--   provider:finish_external_userid_migration(corpid) --> true
--
-- The functions take the suite (or provider) as their first argument and
-- call its get/post, which send its suite_access_token (provider_access_token)
-- and follow the client's retry policy.  A 代开发 app uses the corp forms
-- instead (wecom.new with the permanent code: app:oauth_url with its agentid,
-- app:user_by_code, app:jscode2session), as WeCom's getuserinfo3rd does not
-- serve 代开发 templates.

local type = type

local errors = require "wecom.errors"
local identity = require "wecom.api.identity"
local response = require "wecom.response"

local _M = {}

local PATH = {
    user_by_code = "/cgi-bin/service/auth/getuserinfo3rd",
    user_detail = "/cgi-bin/service/auth/getuserdetail3rd",
    jscode2session = "/cgi-bin/service/miniprogram/jscode2session",
    unionid_to_external_userid_3rd = "/cgi-bin/service/externalcontact/unionid_to_external_userid_3rd",
    corpid_to_opencorpid = "/cgi-bin/service/corpid_to_opencorpid",
    finish_external_userid_migration = "/cgi-bin/service/externalcontact/finish_external_userid_migration",
}
_M.PATH = PATH

local MAX_ID = 128        -- WeCom's ids; anything longer in an answer is not one
local READ = { idempotent = true }

local need = errors.need
local STRING = errors.string

-- a 代开发 template's id starts with "dk" (reference §0)
local function third_party(where, suite)
    local suite_id = need(where, "the suite's suite_id", suite.suite_id, STRING, 3)
    if suite_id:sub(1, 2) == "dk" then
        errors.usage(where, "a 代开发 app uses the corp forms (its wecom.new client: oauth_url with its agentid,"
            .. " user_by_code, jscode2session)", 3)
    end
    return suite_id
end

local OAUTH_OPTIONS = { redirect_uri = identity.REDIRECT_URI, scope = identity.SCOPE, state = identity.STATE }

-- oauth_url(suite, { redirect_uri, state?, scope = "snsapi_base" }) -> url
-- appid is the suite_id and there is no agentid, for every corp (also a
-- downstream one reached through 上下游 sharing).  The link starts with
-- suite.web_base_url when the suite has one (the emulator's), else WeCom's.
function _M.oauth_url(suite, opts)
    local where = "wecom.suite:oauth_url"
    errors.options(where, opts, OAUTH_OPTIONS, { "redirect_uri" })
    local suite_id = third_party(where, suite)
    local base = suite.web_base_url
    if type(base) ~= "string" or base == "" then
        base = identity.WEB_BASE_URL
    end
    return identity.authorize_url((base:gsub("/+$", "")), suite_id, opts.redirect_uri, opts.scope or "snsapi_base",
        opts.state)
end

-- user_by_code(suite, code) -> for a member { corpid, userid, open_userid,
-- user_ticket?, expires_in?, raw }; for a visitor who is not { openid, raw }.
-- userid follows the account-ID upgrade (ciphertext where the corp did not
-- install the app); open_userid is the same for all of the provider's apps.
function _M.user_by_code(suite, code)
    local where = "wecom.suite:user_by_code"
    need(where, "code", code, STRING)
    third_party(where, suite)
    local data, err = suite:get(PATH.user_by_code, { code = code })
    if not data then
        return nil, err
    end
    local result = { raw = data }
    if type(data.userid) == "string" and data.userid ~= "" then
        if type(data.corpid) ~= "string" or data.corpid == "" then
            return nil, errors.new("decode", "answer has a userid but no corpid", { path = PATH.user_by_code })
        end
        result.corpid = data.corpid
        result.userid = data.userid
        result.open_userid = data.open_userid
        result.user_ticket = data.user_ticket
        result.expires_in = data.expires_in
    elseif type(data.openid) == "string" and data.openid ~= "" then
        result.openid = data.openid
    else
        return nil, errors.new("decode", "answer has neither userid nor openid", { path = PATH.user_by_code })
    end
    return result
end

-- user_detail(suite, user_ticket) -> { corpid, userid, name, gender, avatar, qr_code, ... }
function _M.user_detail(suite, user_ticket)
    local where = "wecom.suite:user_detail"
    need(where, "user_ticket", user_ticket, STRING)
    third_party(where, suite)
    local data, err = suite:post(PATH.user_detail, { user_ticket = user_ticket }, nil, READ)
    if not data then
        return nil, err
    end
    local userid, uerr = response.field(data, "userid", "string", PATH.user_detail)
    if not userid then
        return nil, uerr
    end
    data.errcode, data.errmsg = nil, nil
    return data
end

-- jscode2session(suite, js_code) -> { corpid, userid, open_userid, session_key }
-- (the mini program bound to this third-party app; no transfer_session is
-- needed for 上下游: each downstream corp has its own install)
function _M.jscode2session(suite, js_code)
    local where = "wecom.suite:jscode2session"
    need(where, "js_code", js_code, STRING)
    third_party(where, suite)
    local data, err = identity.session_answer(PATH.jscode2session,
        suite:get(PATH.jscode2session, { js_code = js_code, grant_type = "authorization_code" }))
    if not data then
        return nil, err
    end
    return { corpid = data.corpid, userid = data.userid, open_userid = data.open_userid,
             session_key = data.session_key }
end

local UNIONID_3RD_OPTIONS = { unionid = STRING, openid = STRING, corpid = STRING }

-- unionid_to_external_userid_3rd(suite, { unionid, openid [, corpid] })
--   -> { { corpid =, external_userid = }, ... } in the corps that installed the app
function _M.unionid_to_external_userid_3rd(suite, opts)
    local where = "wecom.suite:unionid_to_external_userid_3rd"
    errors.options(where, opts, UNIONID_3RD_OPTIONS, { "unionid", "openid" })
    local path = PATH.unionid_to_external_userid_3rd
    local body = { unionid = opts.unionid, openid = opts.openid, corpid = opts.corpid }
    return response.list_of("external_userid_info", path, suite:post(path, body, nil, READ))
end

-- corpid_to_opencorpid(provider, corpid) -> open_corpid (case-sensitive;
-- only corps that authorized one of the provider's apps)
function _M.corpid_to_opencorpid(provider, corpid)
    need("wecom.provider:corpid_to_opencorpid", "corpid", corpid, STRING)
    local data, err = provider:post(PATH.corpid_to_opencorpid, { corpid = corpid }, nil, READ)
    if not data then
        return nil, err
    end
    local open = data.open_corpid
    if type(open) ~= "string" or open == "" or #open > MAX_ID then
        return nil, errors.new("decode", "response has no usable 'open_corpid'", { path = PATH.corpid_to_opencorpid })
    end
    return open
end

-- finish_external_userid_migration(provider, corpid) -> true: the corp's
-- customers' ids are all in the new form now (reference §6.2)
function _M.finish_external_userid_migration(provider, corpid)
    need("wecom.provider:finish_external_userid_migration", "corpid", corpid, STRING)
    return response.done(provider:post(PATH.finish_external_userid_migration, { corpid = corpid }, nil, READ))
end

return _M
