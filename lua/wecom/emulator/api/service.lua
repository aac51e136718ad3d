-- /cgi-bin/service/*: a provider's suite and provider tokens, installs,
-- permanent codes, authorized corps' tokens and third-party identity
-- (reference/wecom-provider-api.md §1, §2, §4, §6), plus the new
-- /cgi-bin/agent/get_admin_list of an installed app.
--
-- Suite-token routes read `suite_access_token`, provider-token routes
-- `provider_access_token`; a token of another kind there is 40082, and
-- neither is an access_token anywhere else (init.lua check_token: 40014).

local json = require "wecom.json"
local tokens = require "wecom.emulator.tokens"
local server = require "wecom.emulator.server"
local provider = require "wecom.emulator.provider"
local store = require "wecom.emulator.store"
local base = require "wecom.emulator.api.base"

local type = type
local next = next
local pairs = pairs
local ipairs = ipairs
local fail = server.fail
local is_integer = server.is_integer

local _M = {}

local STATE_PATTERN = "^[%w]*$"

-- Tokens ----------------------------------------------------------------------

-- route.token for suite-token routes: -> the suite
local function suite_token(req)
    local token = server.query_token(req.args, "suite_access_token")
    if not token then
        fail(41022)
    end
    local info, expired = tokens.lookup(token)
    if not info or info.kind ~= "suite" then
        fail(40082)
    end
    if expired then
        fail(42009)
    end
    local suite = req.F.provider and req.F.provider.suites[info.suite_id]
    if not suite then
        fail(40082)
    end
    return suite
end

-- route.token for provider-token routes: -> the provider (F.provider)
local function provider_token(req)
    local token = server.query_token(req.args, "provider_access_token")
    if not token then
        fail(41001, "provider_access_token missing")
    end
    local info, expired = tokens.lookup(token)
    if not info or info.kind ~= "provider" or not req.F.provider then
        fail(40082)
    end
    if expired then
        fail(42009, "provider_access_token expired")
    end
    return req.F.provider
end

-- A request naming a suite_id other than its token's (48003).
local function same_suite(fn)
    return function(req)
        local named = req:raw("suite_id")
        if named ~= nil and named ~= req.token.suite_id then
            fail(48003)
        end
        return fn(req, req.token)
    end
end

local function third_party_only(suite)
    if suite.customized then
        fail(48002, "not for a 代开发 template")
    end
end

-- Answers ---------------------------------------------------------------------

local function corp_of(req, corpid)
    return req.F.corps[corpid] or { corpid = corpid, corp_name = corpid }
end

-- auth_corp_info; full = the v1/get_auth_info fields
local function corp_info(req, corpid, full)
    local corp = corp_of(req, corpid)
    local info = { corpid = corpid, corp_name = corp.corp_name or corpid }
    if full then
        local verified = (corp.qualification_status or 1) >= 2
        info.corp_type = verified and "verified" or "unverified"
        info.corp_square_logo_url = corp.square_logo_url or ""
        info.corp_user_max = corp.user_max or 200
        info.corp_full_name = corp.full_name or info.corp_name
        info.verified_end_time = verified and (corp.verified_end_time or 1893427200) or 0
        info.subject_type = 1
        info.corp_wxqrcode = corp.wxqrcode or ""
        info.corp_scale = corp.scale or "1-50人"
        info.corp_industry = corp.industry or ""
        info.corp_sub_industry = corp.sub_industry or ""
    end
    return info
end

local function list(t)
    return json.array(json.copy(t or {}))
end

local function agent_info(suite, rec)
    local p = rec.privilege
    local agent = {
        agentid = rec.agentid, name = suite.name,
        round_logo_url = suite.round_logo_url or "", square_logo_url = suite.square_logo_url or "",
        auth_mode = 0,
        is_customized_app = suite.customized,
        privilege = {
            level = p.level, allow_party = list(p.allow_party), allow_user = list(p.allow_user),
            allow_tag = list(p.allow_tag), extra_party = list(p.extra_party),
            extra_user = list(p.extra_user), extra_tag = list(p.extra_tag),
        },
    }
    if suite.customized then
        agent.auth_from_thirdapp = false
    end
    -- installed by an upstream or group corp's share (上下游 / 企业互联)
    if rec.shared_from then
        agent.shared_from = { corpid = rec.shared_from.corpid, share_type = rec.shared_from.share_type }
    end
    return { agent = json.array { agent } }
end

local function user_info(req, rec)
    -- no installing admin for an install made by a share
    if not rec.userid then
        return nil
    end
    local corp = corp_of(req, rec.corpid)
    local user = corp.users_by_id and corp.users_by_id[rec.userid] or {}
    return {
        userid = rec.userid, open_userid = provider.open_userid(req.F.provider, rec.corpid, rec.userid),
        name = user.name or rec.userid, avatar = user.avatar or "",
    }
end

local function with_state(out, rec)
    if rec.state and rec.state ~= "" then
        out.state = rec.state
    end
    return out
end

-- Credentials (§1) --------------------------------------------------------------

local function get_suite_token(req)
    local suite_id = req:str("suite_id", true, 41021)
    local secret = req:str("suite_secret", true, 41024)
    local ticket = req:str("suite_ticket", true, 41023)
    local suite = req.F.provider and req.F.provider.suites[suite_id]
    if not suite then
        fail(40083)
    end
    if secret ~= suite.suite_secret then
        fail(40080)
    end
    if not provider.ticket_valid(suite, ticket) then
        fail(40085)
    end
    local token, expires_in = provider.suite_token(suite)
    return { suite_access_token = token, expires_in = expires_in }
end

local function get_provider_token(req)
    local corpid = req:str("corpid", true, 41002)
    local secret = req:str("provider_secret", true, 41024)
    local P = req.F.provider
    if not P or corpid ~= P.corpid then
        fail(40013)
    end
    if secret ~= P.provider_secret then
        fail(40091, "provider_secret is invalid")
    end
    local token, expires_in = provider.provider_token(P)
    return { provider_access_token = token, expires_in = expires_in }
end

-- The install of the corp a request names, with its permanent code checked
-- (need_code) -> rec.
local function authorized(req, suite, need_code)
    local corpid = req:str("auth_corpid", true, 84054)
    local code = need_code and req:str("permanent_code", true, 41025)
    local rec = provider.get_auth(suite.suite_id, corpid)
    if not rec then
        fail(40082, "the suite has no authorization from this corp")
    end
    if not rec.active then
        fail(48004)
    end
    if need_code and code ~= rec.permanent_code then
        fail(40084)
    end
    return rec
end

local function get_corp_token(req, suite)
    if suite.customized then
        fail(48002, "a 代开发 app's token comes from /cgi-bin/gettoken with the permanent code as secret")
    end
    local rec = authorized(req, suite, true)
    local token, expires_in = provider.corp_token(suite, rec)
    return { access_token = token, expires_in = expires_in }
end

-- Installs (§2) -----------------------------------------------------------------

local function get_pre_auth_code(_, suite)
    third_party_only(suite)
    local code, expires_in = provider.new_pre_auth_code(suite)
    return { pre_auth_code = code, expires_in = expires_in }
end

local function set_session_info(req, suite)
    local code = req:str("pre_auth_code", true)
    local info = req:object("session_info", true)
    local auth_type = info.auth_type
    if auth_type == nil or auth_type == json.null then
        auth_type = 0
    elseif not is_integer(auth_type) or (auth_type ~= 0 and auth_type ~= 1) then
        fail(40058, "session_info.auth_type must be 0 or 1")
    end
    local appid = info.appid
    if appid ~= nil and appid ~= json.null then
        if type(appid) ~= "table" or (next(appid) ~= nil and appid[1] == nil) then
            fail(40058, "session_info.appid must be an array")
        end
        -- only legacy multi-app suites have app ids
        if appid[1] ~= nil then
            fail(40086)
        end
    end
    local rec, errcode = provider.pre_auth(suite, code)
    if not rec then
        fail(errcode)
    end
    provider.set_session(code, rec, auth_type)
    return {}
end

local function redeem(req, suite)
    local code = req:str("auth_code", true, 41008)
    local rec = provider.redeem_auth_code(suite, code)
    if not rec then
        fail(40078)
    end
    return rec
end

local function get_permanent_code(req, suite)
    local rec = redeem(req, suite)
    local out = {
        permanent_code = rec.permanent_code,
        auth_corp_info = corp_info(req, rec.corpid, true),
        auth_info = agent_info(suite, rec),
        auth_user_info = user_info(req, rec),
    }
    -- a third-party install comes with the corp's token; a 代开发 one does not
    if not suite.customized then
        out.access_token, out.expires_in = provider.corp_token(suite, rec)
    end
    return with_state(out, rec)
end

-- v2: the short answer, recommended during the install (100776)
local function get_permanent_code_v2(req, suite)
    local rec = redeem(req, suite)
    return with_state({
        permanent_code = rec.permanent_code,
        auth_corp_info = corp_info(req, rec.corpid, false),
        auth_user_info = user_info(req, rec),
    }, rec)
end

local function get_auth_info(req, suite)
    local rec = authorized(req, suite, true)
    return { auth_corp_info = corp_info(req, rec.corpid, true), auth_info = agent_info(suite, rec) }
end

local function get_auth_info_v2(req, suite)
    local rec = authorized(req, suite, true)
    local info = corp_info(req, rec.corpid, true)
    info.corp_ex_name = { name_list = json.array() }
    return { auth_corp_info = info, auth_info = agent_info(suite, rec) }
end

local function admins(req, rec, with_open_userid)
    local entry = req.F.provider.corps[rec.corpid]
    local out = json.array()
    for _, userid in ipairs(entry and entry.admins or {}) do
        local a = { userid = userid, auth_type = 1 }
        if with_open_userid then
            a.open_userid = provider.open_userid(req.F.provider, rec.corpid, userid)
        end
        out[#out + 1] = a
    end
    return out
end

-- the old form (suite token; "no longer maintained", still answering)
local function get_admin_list(req, suite)
    local rec = authorized(req, suite, false)
    local agentid = req:int("agentid", true, 41011)
    if agentid ~= rec.agentid then
        fail(40056)
    end
    return { admin = admins(req, rec, true) }
end

-- the new form: the installed app's own token, no body
local function agent_admin_list(req)
    local info = req.token
    local suite = info.suite_id and req.F.provider and req.F.provider.suites[info.suite_id]
    local rec = suite and provider.active_auth(suite.suite_id, info.corpid)
    if not rec then
        fail(48002, "only third-party and 代开发 apps have an admin list")
    end
    return { admin = admins(req, rec, false) }
end

local function get_customized_auth_url(req, P)
    local ids = req:array("templateid_list")
    if ids == nil or #ids == 0 then
        fail(84019)
    end
    if #ids > 9 then
        fail(40058, "at most 9 templateid")
    end
    for _, id in ipairs(ids) do
        local suite = type(id) == "string" and P.suites[id]
        if not (suite and suite.customized) then
            fail(84020)
        end
    end
    local state = req:str("state")
    if state and (#state > 32 or not state:match(STATE_PATTERN)) then
        fail(84025)
    end
    -- a link to render as a QR code; the emulator does not serve it (an
    -- admin's scan is POST /__emulator/authorize with the state)
    return {
        qrcode_url = "https://open.work.weixin.qq.com/3rdqrcode/" .. store.random_string(32),
        expires_in = provider.QRCODE_TTL,
    }
end

local function corpid_to_opencorpid(req, P)
    local corpid = req:str("corpid", true, 41002)
    if not provider.authorized_anywhere(P, corpid) then
        fail(40013, "not a corp that authorized this provider")
    end
    return { open_corpid = provider.open_corpid(P, corpid) }
end

-- Identity (§4) -----------------------------------------------------------------

-- The userid a third-party app sees: plain in a corp that installed it,
-- ciphertext in any other.
local function member(req, suite, corpid, userid)
    local P = req.F.provider
    local open_userid = provider.open_userid(P, corpid, userid)
    local installed = provider.active_auth(suite.suite_id, corpid) ~= nil
    return installed and userid or open_userid, open_userid, installed
end

local function getuserinfo3rd(req, suite)
    third_party_only(suite)
    local code = req:str("code", true, 41008)
    local rec = base.redeem("suite_oauth", code, { suite_id = suite.suite_id })
    if rec.openid then
        return { openid = rec.openid }
    end
    local userid, open_userid, installed = member(req, suite, rec.corpid, rec.userid)
    local out = { corpid = rec.corpid, userid = userid, open_userid = open_userid }
    if installed and (rec.scope == "snsapi_privateinfo" or rec.scope == "snsapi_userinfo") then
        out.user_ticket, out.expires_in = provider.new_user_ticket(suite, rec.corpid, rec.userid)
    end
    return out
end

local function getuserdetail3rd(req, suite)
    third_party_only(suite)
    local ticket = req:str("user_ticket", true, 84090)
    local rec, errcode = provider.user_ticket(suite, ticket)
    if not rec then
        fail(errcode)
    end
    local corp = corp_of(req, rec.corpid)
    local user = corp.users_by_id and corp.users_by_id[rec.userid] or {}
    return {
        corpid = rec.corpid, userid = rec.userid,
        -- apps created after 2019-12-30 get the userid for a name
        name = rec.userid, gender = user.gender or "0", avatar = user.avatar or "",
        qr_code = user.qr_code or "",
    }
end

local function jscode2session(req, suite)
    third_party_only(suite)
    local code = req:str("js_code", true, 41008)
    if req:str("grant_type", true) ~= "authorization_code" then
        fail(40058, "grant_type must be authorization_code")
    end
    local rec = base.redeem("suite_js", code, { suite_id = suite.suite_id })
    local userid, open_userid = member(req, suite, rec.corpid, rec.userid)
    return {
        corpid = rec.corpid, userid = userid, open_userid = open_userid,
        session_key = store.random_string(24),
    }
end

-- Routes ------------------------------------------------------------------------

local S = "/cgi-bin/service/"

local function suite_route(method, fn, extra)
    local route = { method = method, token = suite_token, fn = same_suite(fn) }
    for k, v in pairs(extra or {}) do
        route[k] = v
    end
    return route
end

local function provider_route(fn)
    return { method = "POST", token = provider_token, fn = function(req) return fn(req, req.token) end }
end
-- for the routes of other modules (api/idconvert.lua) with these tokens
_M.suite_route, _M.provider_route = suite_route, provider_route

_M.routes = {
    -- the documented answers of these two carry no errcode on success
    [S .. "get_suite_token"] = { method = "POST", token = false, fn = get_suite_token, no_errcode = true },
    [S .. "get_corp_token"] = suite_route("POST", get_corp_token, { no_errcode = true }),
    [S .. "get_provider_token"] = { method = "POST", token = false, fn = get_provider_token },
    [S .. "get_pre_auth_code"] = suite_route("GET", get_pre_auth_code),
    [S .. "set_session_info"] = suite_route("POST", set_session_info),
    [S .. "get_permanent_code"] = suite_route("POST", get_permanent_code),
    [S .. "v2/get_permanent_code"] = suite_route("POST", get_permanent_code_v2),
    [S .. "get_auth_info"] = suite_route("POST", get_auth_info),
    [S .. "v2/get_auth_info"] = suite_route("POST", get_auth_info_v2),
    [S .. "get_admin_list"] = suite_route("POST", get_admin_list),
    [S .. "auth/getuserinfo3rd"] = suite_route("GET", getuserinfo3rd),
    [S .. "auth/getuserdetail3rd"] = suite_route("POST", getuserdetail3rd),
    [S .. "miniprogram/jscode2session"] = suite_route("GET", jscode2session),
    [S .. "get_customized_auth_url"] = provider_route(get_customized_auth_url),
    [S .. "corpid_to_opencorpid"] = provider_route(corpid_to_opencorpid),
    ["/cgi-bin/agent/get_admin_list"] = { method = "POST", token = "any", body_optional = true,
        fn = agent_admin_list },
}

return _M
