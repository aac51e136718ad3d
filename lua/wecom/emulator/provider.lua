-- Service providers (reference/wecom-provider-api.md): the fixture's
-- `provider` section, and what WeCom keeps for a provider's suites, on the
-- emulator clock: suite tickets, pre-auth codes with their session info,
-- installs (one per suite and corp) with their permanent codes, AuthCodes,
-- the corps a third-party app was shared to, and user tickets.
--
-- Shared-dict keys:
--   sticket:<ticket>           {suite_id, expires_at}
--   pac:<pre_auth_code>        {suite_id, expires_at, auth_type}; pacused:<code> once installed
--   auth:<suite_id>:<corpid>   the install (see install())
--   authcode:<code>            {suite_id, corpid, install_id, purpose, expires_at}; authcodeused:<code>
--   agentof:<corpid>:<agentid> the suite_id installed under that agentid
--   shares:<suite_id>:<corpid>:<business_type>  corpids that corp shared the app to
--   uticket:<user_ticket>      {suite_id, corpid, userid, expires_at}
-- Tokens (suite, provider, a corp's) are wecom.emulator.tokens tokens of
-- kinds "suite", "provider", "3rd" and, for 代开发 apps, "app" with a suite_id.

local json = require "wecom.json"
local store = require "wecom.emulator.store"
local tokens = require "wecom.emulator.tokens"

local ngx = ngx
local type = type
local pairs = pairs
local ipairs = ipairs
local next = next
local error = error
local tostring = tostring
local format = string.format

local _M = {}

_M.TICKET_TTL = 1800         -- a suite_ticket: 30 minutes (pushed every 10)
_M.PRE_AUTH_TTL = 1200       -- pre_auth_code: 20 minutes
_M.AUTH_CODE_TTL = 600       -- AuthCode: 10 minutes, single use
_M.USER_TICKET_TTL = 1800
_M.QRCODE_TTL = 864000       -- get_customized_auth_url: 10 days

local FIRST_AGENTID = 2000000
local MAX_CODE = 512         -- longer tickets and codes are never valid

-- Fixture ---------------------------------------------------------------------

local function fail(msg)
    error("wecom emulator fixture: provider" .. msg, 0)
end

local function need_string(v, where)
    if type(v) ~= "string" or v == "" then
        fail(where .. " must be a non-empty string")
    end
    return v
end

local function is_list(v)
    return type(v) == "table" and (next(v) == nil or v[1] ~= nil)
end

local function check_suite(s, where, seen)
    if type(s) ~= "table" then
        fail(where .. " must be an object")
    end
    need_string(s.suite_id, where .. ".suite_id")
    if seen[s.suite_id] then
        fail(": duplicate suite_id " .. s.suite_id)
    end
    seen[s.suite_id] = true
    need_string(s.suite_secret, where .. ".suite_secret")
    local cb = s.callback
    if type(cb) ~= "table" or type(cb.token) ~= "string" or cb.token == ""
        or type(cb.aes_key) ~= "string" or not cb.aes_key:match("^" .. ("[%w]"):rep(43) .. "$") then
        fail(where .. ".callback must have a token and a 43-character aes_key")
    end
    if s.customized ~= nil and type(s.customized) ~= "boolean" then
        fail(where .. ".customized must be a boolean")
    end
    -- a 代开发 template's id starts with "dk"; a third-party app's does not
    if (s.customized == true) ~= (s.suite_id:sub(1, 2) == "dk") then
        fail(where .. ": customized is true exactly for a suite_id starting with \"dk\"")
    end
    for _, field in ipairs { "name", "redirect_domain", "install_domain" } do
        if s[field] ~= nil and type(s[field]) ~= "string" then
            fail(where .. "." .. field .. " must be a string")
        end
    end
end

-- index(section, F) -> P | nil: checks the fixture's `provider` section and
-- indexes it. A corp of provider.corps that the fixture does not have yet
-- (not the upstream or a downstream corp) becomes a corp of F.corps.
function _M.index(section, F)
    if section == nil then
        return nil
    end
    if type(section) ~= "table" then
        fail(" must be an object")
    end
    local P = {
        corpid = need_string(section.corpid, ".corpid"),
        corp_name = section.corp_name or section.corpid,
        provider_secret = need_string(section.provider_secret, ".provider_secret"),
        suites = {}, suite_list = {},
        corps = {}, corp_list = {},
    }
    if not is_list(section.suites) or #section.suites == 0 then
        fail(".suites must be a non-empty list")
    end
    local seen = {}
    for i, s in ipairs(section.suites) do
        check_suite(s, format(".suites[%d]", i), seen)
        s.customized = s.customized == true
        s.name = s.name or s.suite_id
        s.install_domain = s.install_domain or s.redirect_domain
        P.suites[s.suite_id] = s
        P.suite_list[i] = s
    end
    if section.corps ~= nil and not is_list(section.corps) then
        fail(".corps must be a list")
    end
    for i, entry in ipairs(section.corps or {}) do
        local where = format(".corps[%d]", i)
        if type(entry) ~= "table" then
            fail(where .. " must be an object")
        end
        local corpid = need_string(entry.corpid, where .. ".corpid")
        if P.corps[corpid] then
            fail(": duplicate corp " .. corpid)
        end
        local corp = F.corps[corpid]
        if not corp then
            corp = entry
            corp.corp_name = corp.corp_name or corpid
            if corp.users ~= nil and not is_list(corp.users) then
                fail(where .. ".users must be a list")
            end
            corp.apps_by_id, corp.users_by_id = {}, {}
            for j, user in ipairs(corp.users or {}) do
                need_string(type(user) == "table" and user.userid, format("%s.users[%d].userid", where, j))
                corp.users_by_id[user.userid] = user
            end
            F.corps[corpid] = corp
        end
        -- the corp's admins: who installs, and get_admin_list's answer
        local admins = entry.admins
        if admins ~= nil then
            if not is_list(admins) then
                fail(where .. ".admins must be a list of userids")
            end
            for _, id in ipairs(admins) do
                if type(id) ~= "string" or not corp.users_by_id[id] then
                    fail(where .. ".admins: " .. tostring(id) .. " is not a user of the corp")
                end
            end
        elseif corp.users and corp.users[1] then
            admins = { corp.users[1].userid }
        else
            admins = {}
        end
        P.corps[corpid] = { corp = corp, admins = admins }
        P.corp_list[i] = corpid
    end
    return P
end

-- generated(upstream, corpids) -> the provider section of a `--corps N`
-- fixture: the bundled suites; the upstream corp (it can share a suite to
-- the others) and those corps can install them.
function _M.generated(upstream, corpids)
    local section = json.decode(require "wecom.emulator.default_fixture").provider
    local corps = json.array { { corpid = upstream } }
    for _, corpid in ipairs(corpids) do
        corps[#corps + 1] = { corpid = corpid }
    end
    section.corps = corps
    return section
end

-- Suite tickets ---------------------------------------------------------------

local TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

function _M.mint_ticket(suite)
    local ticket = store.random_string(64, TOKEN_CHARS)
    store.set_json("sticket:" .. ticket, { suite_id = suite.suite_id, expires_at = store.now() + _M.TICKET_TTL })
    return ticket, _M.TICKET_TTL
end

-- Each pushed ticket stays valid for its 30 minutes; one of another suite is
-- invalid (40085).
function _M.ticket_valid(suite, ticket)
    if #ticket > MAX_CODE then
        return false
    end
    local rec = store.get_json("sticket:" .. ticket)
    return rec ~= nil and rec.suite_id == suite.suite_id and rec.expires_at > store.now()
end

-- Tokens ----------------------------------------------------------------------

function _M.suite_token(suite)
    return tokens.issue("suite:" .. suite.suite_id, { kind = "suite", suite_id = suite.suite_id })
end

function _M.provider_token(P)
    return tokens.issue("provider:" .. P.corpid, { kind = "provider", corpid = P.corpid })
end

local function owner_key(suite, corpid)
    return (suite.customized and "dk:" or "3rd:") .. suite.suite_id .. ":" .. corpid
end

-- The token of an authorized corp: get_corp_token's (third-party) or
-- gettoken's with the permanent code as secret (代开发, a self-built app to
-- the corp's APIs).
function _M.corp_token(suite, rec)
    return tokens.issue(owner_key(suite, rec.corpid), {
        kind = suite.customized and "app" or "3rd",
        corpid = rec.corpid, agentid = rec.agentid, suite_id = suite.suite_id,
    })
end

-- Pre-auth codes ----------------------------------------------------------------

function _M.new_pre_auth_code(suite)
    local code = store.random_string(48, TOKEN_CHARS)
    store.set_json("pac:" .. code, {
        suite_id = suite.suite_id, expires_at = store.now() + _M.PRE_AUTH_TTL, auth_type = 0,
    })
    return code, _M.PRE_AUTH_TTL
end

-- pre_auth(suite, code) -> rec | nil, errcode (40077 unknown, another
-- suite's or used; 42007 expired)
function _M.pre_auth(suite, code)
    local rec = #code <= MAX_CODE and store.get_json("pac:" .. code)
    if not rec or rec.suite_id ~= suite.suite_id or store.get("pacused:" .. code) then
        return nil, 40077
    end
    if rec.expires_at <= store.now() then
        return nil, 42007
    end
    return rec
end

function _M.set_session(code, rec, auth_type)
    rec.auth_type = auth_type
    store.set_json("pac:" .. code, rec)
end

-- One install per pre_auth_code: true for the first caller only.
function _M.use_pre_auth(code)
    return store.add("pacused:" .. code, true)
end

-- Installs ----------------------------------------------------------------------

local function auth_key(suite_id, corpid)
    return "auth:" .. suite_id .. ":" .. corpid
end

-- get_auth(suite_id, corpid) -> the install (active or cancelled) | nil
function _M.get_auth(suite_id, corpid)
    if type(corpid) ~= "string" or #corpid > MAX_CODE then
        return nil
    end
    return store.get_json(auth_key(suite_id, corpid))
end

function _M.active_auth(suite_id, corpid)
    local rec = _M.get_auth(suite_id, corpid)
    return rec and rec.active and rec or nil
end

local function mint_auth_code(rec, purpose)
    local code = store.random_string(64, TOKEN_CHARS)
    store.set_json("authcode:" .. code, {
        suite_id = rec.suite_id, corpid = rec.corpid, install_id = rec.install_id, purpose = purpose,
        expires_at = store.now() + _M.AUTH_CODE_TTL,
    })
    return code
end

local function new_secret()
    return store.random_string(43)
end

local function default_privilege()
    return { level = 1, allow_party = { 1 }, allow_user = {}, allow_tag = {},
             extra_party = {}, extra_user = {}, extra_tag = {} }
end

-- install(suite, corpid, o) -> rec, auth_code | nil, err. o: auth_type (1 =
-- test install), state, userid (the installing admin; none for a share),
-- shared_from = { corpid, share_type }. A new install gets a new agentid and
-- permanent code.
function _M.install(suite, corpid, o)
    local key = auth_key(suite.suite_id, corpid)
    return store.with_lock(key, function()
        local old = store.get_json(key)
        if old and old.active then
            return nil, corpid .. " has " .. suite.suite_id .. " installed already"
        end
        local rec = {
            suite_id = suite.suite_id, corpid = corpid, active = true,
            agentid = store.incr("provider_agentid", 1, FIRST_AGENTID),
            install_id = store.unique("i", 8),
            permanent_code = new_secret(),
            auth_type = o.auth_type or 0,
            state = o.state, userid = o.userid, shared_from = o.shared_from,
            privilege = default_privilege(),
            installed_at = store.now(),
        }
        store.set_json(key, rec)
        store.set("agentof:" .. corpid .. ":" .. rec.agentid, suite.suite_id)
        return rec, mint_auth_code(rec, "create")
    end)
end

-- update(suite, corpid, fn) -> rec, extra | nil, err: fn(rec) changes an
-- active install under its lock.
local function update(suite, corpid, fn)
    local key = auth_key(suite.suite_id, corpid)
    return store.with_lock(key, function()
        local rec = store.get_json(key)
        if not (rec and rec.active) then
            return nil, corpid .. " has not installed " .. suite.suite_id
        end
        local extra = fn(rec)
        store.set_json(key, rec)
        return rec, extra
    end)
end

-- change_auth: the admin changed the app's range (privilege fields given
-- replace the old ones).
function _M.change(suite, corpid, privilege)
    return update(suite, corpid, function(rec)
        for k, v in pairs(privilege or {}) do
            rec.privilege[k] = v
        end
    end)
end

-- cancel_auth: the permanent code is dead (48004) and the corp's token
-- unknown from now on.
function _M.cancel(suite, corpid)
    local rec, err = update(suite, corpid, function(rec)
        rec.active = false
        rec.cancelled_at = store.now()
    end)
    if rec then
        tokens.revoke(owner_key(suite, corpid))
    end
    return rec, err
end

-- reset_permanent_code (代开发): a new secret at once; the AuthCode fetches it.
function _M.reset(suite, corpid)
    return update(suite, corpid, function(rec)
        rec.permanent_code = new_secret()
        return mint_auth_code(rec, "reset")
    end)
end

-- redeem_auth_code(suite, code) -> rec, purpose | nil: single use, 10
-- minutes, this suite's, and the install it was minted for still active.
function _M.redeem_auth_code(suite, code)
    if #code > MAX_CODE then
        return nil
    end
    local c = store.get_json("authcode:" .. code)
    if not c or c.suite_id ~= suite.suite_id or c.expires_at <= store.now() then
        return nil
    end
    if not store.add("authcodeused:" .. code, true) then
        return nil
    end
    local rec = _M.active_auth(suite.suite_id, c.corpid)
    if not rec or rec.install_id ~= c.install_id then
        return nil
    end
    return rec, c.purpose
end

-- The suite installed in corpid under agentid, if any.
function _M.suite_at(F, corpid, agentid)
    local P = F.provider
    local suite_id = P and store.get("agentof:" .. corpid .. ":" .. tostring(agentid))
    local suite = suite_id and P.suites[suite_id]
    local rec = suite and _M.active_auth(suite.suite_id, corpid)
    if rec and rec.agentid == agentid then
        return suite, rec
    end
end

local function contains(list, v)
    for _, x in ipairs(list or {}) do
        if x == v then
            return true
        end
    end
    return false
end

-- installed_app(F, token_info) -> the app table /cgi-bin/agent/get and
-- /cgi-bin/user/get read (see api/base.lua token_app) | nil
function _M.installed_app(F, info)
    local P = F.provider
    local suite = P and P.suites[info.suite_id]
    local rec = suite and _M.active_auth(suite.suite_id, info.corpid)
    if not rec or rec.agentid ~= info.agentid then
        return nil
    end
    local priv = rec.privilege
    local app = {
        agentid = rec.agentid, name = suite.name, description = suite.description or "",
        square_logo_url = suite.square_logo_url or "", redirect_domain = suite.redirect_domain or "",
        home_url = suite.home_url or "", allow_partys = priv.allow_party,
    }
    -- the whole corp (department 1) or the listed members only
    if not contains(priv.allow_party, 1) then
        app.allow_userids = json.array(json.copy(priv.allow_user))
    end
    return app
end

-- customized_token(F, corpid, secret) -> gettoken's answer when secret is
-- the permanent code of a 代开发 app active in corpid | nil
function _M.customized_token(F, corpid, secret)
    local P = F.provider
    for _, suite in ipairs(P and P.suite_list or {}) do
        if suite.customized then
            local rec = _M.active_auth(suite.suite_id, corpid)
            if rec and rec.permanent_code == secret then
                local token, expires_in = _M.corp_token(suite, rec)
                return { access_token = token, expires_in = expires_in }
            end
        end
    end
end

-- Shares ------------------------------------------------------------------------

local function shares_key(suite_id, corpid, bt)
    return "shares:" .. suite_id .. ":" .. corpid .. ":" .. bt
end

function _M.add_shares(suite, corpid, bt, corpids)
    local key = shares_key(suite.suite_id, corpid, bt)
    store.with_lock(key, function()
        local list = store.get_json(key) or {}
        for _, id in ipairs(corpids) do
            if not contains(list, id) then
                list[#list + 1] = id
            end
        end
        store.set_json(key, list)
    end)
end

-- shares(F, token_info, bt) -> list_app_share_info's source for a
-- third-party app: the corps the token's corp shared it to that still have
-- it installed through that share.
function _M.shares(F, info, bt)
    local out = {}
    local ids = store.get_json(shares_key(info.suite_id, info.corpid, bt)) or {}
    for _, id in ipairs(ids) do
        local rec = _M.active_auth(info.suite_id, id)
        if rec and rec.shared_from and rec.shared_from.corpid == info.corpid then
            out[#out + 1] = { corpid = id, corp_name = F.corps[id] and F.corps[id].corp_name or id,
                              agentid = rec.agentid, confirmed = true }
        end
    end
    return out
end

-- Identity ----------------------------------------------------------------------

-- Case matters in WeCom's encrypted ids; these mix cases on purpose.
local function mixed_case(hex)
    return (hex:gsub("()(%a)", function(i, c)
        return i % 2 == 0 and c:upper() or c
    end))
end

-- The provider-level ids of the account-ID upgrade (reference §6).
function _M.open_corpid(P, corpid)
    return "wp" .. mixed_case(ngx.md5("corp/" .. P.corpid .. "/" .. corpid)):sub(1, 30)
end

function _M.open_userid(P, corpid, userid)
    return "wo" .. mixed_case(ngx.md5("user/" .. P.corpid .. "/" .. corpid .. "/" .. userid)):sub(1, 30)
end

-- A customer's external_userid in the provider's form (what its third-party
-- and upgraded 代开发 apps see), from the corp's own one.
function _M.open_external_userid(P, corpid, external_userid)
    return "wm" .. mixed_case(ngx.md5("ext/" .. P.corpid .. "/" .. corpid .. "/" .. external_userid)):sub(1, 30)
end

-- Any suite of the provider active in corpid?
function _M.authorized_anywhere(P, corpid)
    for _, suite in ipairs(P.suite_list) do
        if _M.active_auth(suite.suite_id, corpid) then
            return true
        end
    end
    return false
end

function _M.new_user_ticket(suite, corpid, userid)
    local ticket = store.random_string(64, TOKEN_CHARS)
    store.set_json("uticket:" .. ticket, {
        suite_id = suite.suite_id, corpid = corpid, userid = userid,
        expires_at = store.now() + _M.USER_TICKET_TTL,
    })
    return ticket, _M.USER_TICKET_TTL
end

-- user_ticket(suite, ticket) -> rec | nil, errcode (84015 invalid, 84014 expired)
function _M.user_ticket(suite, ticket)
    local rec = #ticket <= MAX_CODE and store.get_json("uticket:" .. ticket)
    if not rec or rec.suite_id ~= suite.suite_id then
        return nil, 84015
    end
    if rec.expires_at <= store.now() then
        return nil, 84014
    end
    return rec
end

return _M
