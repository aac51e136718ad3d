-- §1 gettoken, the corp's own /cgi-bin/agent/get and /cgi-bin/user/get, §5
-- identity (OAuth codes, jscode2session), §6 JSAPI tickets.

local json = require "wecom.json"
local store = require "wecom.emulator.store"
local tokens = require "wecom.emulator.tokens"
local server = require "wecom.emulator.server"
local provider = require "wecom.emulator.provider"

local ngx = ngx
local pairs = pairs
local ipairs = ipairs
local fail = server.fail

local _M = {}

local CODE_TTL = 300      -- OAuth and js codes: 5 minutes, single use
local SESSION_TTL = 7200

-- secret -> corpid of its owner, for telling 40001 from 40091.
local function secret_owner(F, secret)
    for corpid, corp in pairs(F.corps) do
        for _, app in pairs(corp.apps_by_id) do
            if app.secret == secret then
                return corpid, app
            end
        end
    end
end

local function gettoken(req)
    local F = req.F
    local corpid = req:str("corpid", true, 41002)
    local secret = req:str("corpsecret", true, 41004)
    local corp = F.corps[corpid]
    if not corp then
        fail(40013)
    end
    -- a 代开发 app: its permanent code is its secret (reference §1.5)
    local customized = provider.customized_token(F, corpid, secret)
    if customized then
        return customized
    end
    local owner, app = secret_owner(F, secret)
    if owner == nil then
        fail(40001)
    elseif owner ~= corpid then
        fail(40091)
    end
    local token, expires_in = tokens.issue("app:" .. corpid .. ":" .. app.agentid,
        { kind = "app", corpid = corpid, agentid = app.agentid })
    return { access_token = token, expires_in = expires_in }
end

-- The app (upstream app or downstream agent) a token acts for.
function _M.token_app(F, info)
    local corp = F.corps[info.corpid]
    if info.suite_id then
        -- installed by a provider's suite (third-party or 代开发)
        return provider.installed_app(F, info), corp
    end
    return corp and corp.apps_by_id[info.agentid], corp
end

local function visible_userids(corp, app)
    if app and app.allow_userids then
        return app.allow_userids
    end
    local ids = json.array()
    for _, user in ipairs(corp.users or {}) do
        ids[#ids + 1] = user.userid
    end
    return ids
end

local function agent_get(req)
    local agentid = req:int("agentid", true, 41011)
    local info = req.token
    if agentid ~= info.agentid then
        fail(301002)
    end
    local app, corp = _M.token_app(req.F, info)
    if not app then
        fail(40056)
    end
    local users = json.array()
    for _, id in ipairs(visible_userids(corp, app)) do
        users[#users + 1] = { userid = id }
    end
    return {
        agentid = app.agentid,
        name = app.name or "",
        description = app.description or "",
        square_logo_url = app.square_logo_url or "",
        allow_userinfos = { user = users },
        allow_partys = { partyid = json.array(app.allow_partys or { 1 }) },
        allow_tags = { tagid = json.array() },
        close = 0,
        redirect_domain = app.redirect_domain or "",
        report_location_flag = 0,
        isreportenter = 0,
        home_url = app.home_url or "",
        customized_publish_status = 1,
    }
end

local function user_get(req)
    local userid = req:str("userid", true, 41009)
    local app, corp = _M.token_app(req.F, req.token)
    local user = corp and corp.users_by_id[userid]
    if not user then
        fail(60111, userid)
    end
    local visible = false
    for _, id in ipairs(visible_userids(corp, app)) do
        if id == userid then
            visible = true
            break
        end
    end
    if not visible then
        fail(60011)
    end
    local out = json.copy(user)
    out.department = json.array(out.department or { 1 })
    out.main_department = out.main_department or out.department[1] or 1
    out.status = out.status or 1
    out.gender = out.gender or "0"
    out.position = out.position or ""
    out.mobile = out.mobile or ""
    out.email = out.email or ""
    return out
end

local function jsapi_ticket(req)
    local ticket, expires_in = tokens.ticket("jsapi:" .. req.token.corpid)
    return { ticket = ticket, expires_in = expires_in }
end

local function agent_ticket(req)
    local kind = req:str("type", true)
    if kind ~= "agent_config" then
        fail(40058, "invalid type")
    end
    local info = req.token
    local ticket, expires_in = tokens.ticket("agent:" .. info.corpid .. ":" .. info.agentid)
    return { ticket = ticket, expires_in = expires_in }
end

-- Codes are minted by the control API (/__emulator/oauth_code, js_code):
-- code:<code> -> {corpid, userid | openid, agentid?, expires_at}
function _M.mint_code(kind, fields)
    local code = store.random_string(64)
    fields.kind = kind
    fields.expires_at = store.now() + CODE_TTL
    store.set_json("code:" .. code, fields)
    return code, CODE_TTL
end

-- Single use: the first redeemer wins, across workers.
local function redeem(kind, code, info)
    local rec = store.get_json("code:" .. code)
    if not rec or rec.kind ~= kind or rec.expires_at <= store.now() then
        fail(40029)
    end
    if (rec.agentid and rec.agentid ~= info.agentid) or (rec.suite_id and rec.suite_id ~= info.suite_id) then
        fail(40029, "code was issued for another app")
    end
    if not store.add("codeused:" .. code, true) then
        fail(40029, "code already used")
    end
    store.delete("code:" .. code)
    return rec
end
_M.redeem = redeem

-- The opaque userid an upstream app is given for a downstream user in
-- 上下游 (the account-ID upgrade: an upstream corp sees its downstream
-- corps' ids as a provider does; transfer_session reveals the real one).
local function encrypted_userid(corpid, userid)
    return "wo" .. ngx.md5(corpid .. "/" .. userid):sub(1, 26)
end

-- Is corpid one of the corps the app (upstream agentid) is shared to
-- through 上下游 (business_type 1)?
local function chain_corp(F, agentid, corpid)
    local shares = F.shares[agentid]
    for _, s in ipairs(shares and shares[1] or {}) do
        if s.corpid == corpid then
            return true
        end
    end
    return false
end

-- The userid an upstream app is shown for a member of corpid: its own
-- members' as they are, 上下游 members' as ciphertext, 企业互联 members'
-- (and any other corp's) in plain text.
local function shown_userid(F, agentid, corpid, userid)
    if corpid ~= F.upstream.corpid and chain_corp(F, agentid, corpid) then
        return encrypted_userid(corpid, userid)
    end
    return userid
end

local function getuserinfo(req)
    local code = req:str("code", true, 41008)
    local rec = redeem("oauth", code, req.token)
    if rec.openid then
        return { openid = rec.openid }
    end
    local userid = shown_userid(req.F, req.token.agentid, rec.corpid, rec.userid)
    if rec.corpid == req.F.upstream.corpid then
        return { userid = userid }
    end
    -- another corp's member: "CorpId/userid"
    return { userid = rec.corpid .. "/" .. userid }
end

local function jscode2session(req)
    local code = req:str("js_code", true, 41008)
    local grant = req:str("grant_type", true)
    if grant ~= "authorization_code" then
        fail(40058, "grant_type must be authorization_code")
    end
    local rec = redeem("js", code, req.token)
    local session_key = store.random_string(24)
    local userid = shown_userid(req.F, req.token.agentid, rec.corpid, rec.userid)
    store.set_json("session:" .. session_key, {
        corpid = rec.corpid, userid = rec.userid, shown_userid = userid,
        upstream_agentid = req.token.agentid,
    }, SESSION_TTL)
    return { corpid = rec.corpid, userid = userid, session_key = session_key }
end

-- §2.3: needs the downstream token of the corp the session belongs to, for
-- the app shared from the one that made the session.
local function transfer_session(req)
    local userid = req:str("userid", true, 41009)
    local session_key = req:str("session_key", true)
    local info = req.token
    local session = store.get_json("session:" .. session_key)
    if not session then
        fail(40058, "invalid session_key")
    end
    if session.corpid ~= info.corpid or session.upstream_agentid ~= info.upstream_agentid then
        fail(48002, "session_key belongs to another corp or app")
    end
    if session.shown_userid ~= userid then
        fail(40058, "userid does not match session_key")
    end
    local new_key = store.random_string(24)
    store.set_json("session:" .. new_key, {
        corpid = session.corpid, userid = session.userid, shown_userid = session.userid,
        downstream = true, agentid = info.agentid,
    }, SESSION_TTL)
    return { userid = session.userid, session_key = new_key }
end

_M.routes = {
    ["/cgi-bin/gettoken"] = { method = "GET", token = false, fn = gettoken },
    ["/cgi-bin/agent/get"] = { method = "GET", token = "any", fn = agent_get },
    ["/cgi-bin/user/get"] = { method = "GET", token = "any", fn = user_get },
    ["/cgi-bin/get_jsapi_ticket"] = { method = "GET", token = "any", fn = jsapi_ticket },
    ["/cgi-bin/ticket/get"] = { method = "GET", token = "any", fn = agent_ticket },
    ["/cgi-bin/auth/getuserinfo"] = { method = "GET", token = "upstream", fn = getuserinfo },
    ["/cgi-bin/miniprogram/jscode2session"] = { method = "GET", token = "upstream", fn = jscode2session },
    ["/cgi-bin/miniprogram/transfer_session"] = { method = "POST", token = "downstream", fn = transfer_session },
}

return _M
