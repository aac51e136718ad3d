-- The account-ID upgrade's conversions (reference/wecom-provider-api.md
-- §6.2), the mass-call ticket (§7) and the idconvert quota, on the emulator.
--
-- Ids (the provider's, reference §6.1): a member's open_userid and a
-- corp's open corpid come from provider.lua; a customer's external_userid
-- in a provider's form is derived from the corp's own one (the fixture's
-- customers[].external_userids, what a self-built app sees).
--
-- Tokens: a third-party app's authorized-corp token (kind "3rd"), a 代开发
-- app's (kind "app" with a suite_id), a self-built app's (kind "app"). Each
-- route checks the kinds WeCom lets call it (48002 otherwise).
--
-- Shared-dict keys:
--   masscall:<corpid>             the corp applied for its ticket (once ever)
--   mct:<ticket>                  {corpid, expires_at}
--   quota:<scope>:h:<hour>, :d:<day>, :m:<YYYY-MM>   call counts
--   pending3:<provider>:<corpid>:<unionid>          {pending_id, expires_at}
--   migrated:<corpid>             finish_external_userid_migration was called
--   newcustomers                  [{unionid, openid, corpid, external_userid}]: WeChat
--                                 users who became customers (POST /__emulator/customer)

local json = require "wecom.json"
local store = require "wecom.emulator.store"
local server = require "wecom.emulator.server"
local provider = require "wecom.emulator.provider"
local service = require "wecom.emulator.api.service"

local ngx = ngx
local type = type
local pairs = pairs
local ipairs = ipairs
local floor = math.floor
local os_date = os.date
local fail = server.fail

local _M = {}

local MAX_IDS = 1000            -- userid lists, external_userid_list
local MAX_PENDING = 100         -- idconvert/batch/external_userid_to_pending_id
local MASS_CALL_TTL = 7 * 86400
local MASS_CALL_WINDOW = 90 * 86400   -- "within 3 months of the authorization"
local PENDING_TTL = 90 * 86400
local CHINA_OFFSET = 8 * 3600   -- WeCom's day starts at midnight Beijing time

-- Tokens ------------------------------------------------------------------------

local function is_third_party(info)
    return info.kind == "3rd"
end

local function is_customized(info)
    return info.kind == "app" and info.suite_id ~= nil
end

local function is_self_built(info)
    return info.kind == "app" and info.suite_id == nil
end

-- A third-party app's or a 代开发 app's token (-> the provider), or 48002.
local function provider_app(req, what)
    local info = req.token
    if not (is_third_party(info) or is_customized(info)) or not req.F.provider then
        fail(48002, what .. " needs a third-party app's or a 代开发 app's access_token")
    end
    return req.F.provider
end

local function self_built(req, what)
    if not is_self_built(req.token) then
        fail(48002, what .. " needs a self-built app's access_token")
    end
end

-- The installed third-party or 代开发 app `agentid` of the token's corp, or 40056.
local function source_app(req, agentid)
    local suite = provider.suite_at(req.F, req.token.corpid, agentid)
    if not suite then
        fail(40056, "source_agentid is not a third-party or 代开发 app of this corp")
    end
    return suite
end

-- Ids -----------------------------------------------------------------------------

-- The fixture's customers and those added since: -> a list of
-- { unionid, openid, corpid, external_userid (the corp's own) }
local function all_customers(F)
    local out = {}
    for unionid, customer in pairs(F.customers) do
        for _, ext in ipairs(customer.external_userids or {}) do
            out[#out + 1] = { unionid = unionid, openid = customer.openid, corpid = ext.corpid,
                              external_userid = ext.external_userid }
        end
    end
    for _, c in ipairs(store.get_json("newcustomers") or {}) do
        out[#out + 1] = c
    end
    return out
end

local function customers_of(F, corpid)
    local out = {}
    for _, c in ipairs(all_customers(F)) do
        if c.corpid == corpid then
            out[#out + 1] = c
        end
    end
    return out
end

-- The WeChat user's openid, if the emulator knows the unionid (nil: unknown)
local function openid_of(F, unionid)
    local customer = F.customers[unionid]
    if customer then
        return customer.openid
    end
    for _, c in ipairs(store.get_json("newcustomers") or {}) do
        if c.unionid == unionid then
            return c.openid
        end
    end
end

local function check_openid(F, unionid, openid)
    local known = openid_of(F, unionid)
    if known and known ~= openid then
        fail(40058, "openid does not belong to this unionid")
    end
end

-- The customer of corpid an external_userid names, in the corp's own form
-- or the provider's: -> customer, own_id, provider_id | nil
local function customer_by_external(F, P, corpid, id)
    for _, c in ipairs(customers_of(F, corpid)) do
        local open = P and provider.open_external_userid(P, corpid, c.external_userid)
        if id == c.external_userid or id == open then
            return c, c.external_userid, open
        end
    end
end

local function id_list(req, field, max)
    local list = req:array(field, true)
    if #list > max then
        fail(40058, field .. " holds more than " .. max .. " ids")
    end
    for _, id in ipairs(list) do
        if type(id) ~= "string" then
            fail(40058, field .. " must hold strings")
        end
    end
    return list
end

-- userid <-> open_userid --------------------------------------------------------------

local function userid_to_openuserid(req)
    local P = provider_app(req, "userid_to_openuserid")
    local corpid = req.token.corpid
    local corp = req.F.corps[corpid]
    local list = id_list(req, "userid_list", MAX_IDS)
    local converted, invalid = json.array(), json.array()
    for _, userid in ipairs(list) do
        if corp and corp.users_by_id[userid] then
            converted[#converted + 1] = { userid = userid, open_userid = provider.open_userid(P, corpid, userid) }
        else
            invalid[#invalid + 1] = userid
        end
    end
    return { open_userid_list = converted, invalid_userid_list = invalid }
end

local function openuserid_to_userid(req)
    self_built(req, "openuserid_to_userid")
    local list = id_list(req, "open_userid_list", MAX_IDS)
    local agentid = req:int("source_agentid", true, 41011)
    source_app(req, agentid)
    local P = req.F.provider
    local corpid = req.token.corpid
    local by_open = {}
    for _, user in ipairs(req.F.corps[corpid].users or {}) do
        by_open[provider.open_userid(P, corpid, user.userid)] = user.userid
    end
    local converted, invalid = json.array(), json.array()
    for _, open in ipairs(list) do
        -- exact: encrypted ids are case-sensitive
        local userid = by_open[open]
        if userid then
            converted[#converted + 1] = { open_userid = open, userid = userid }
        else
            invalid[#invalid + 1] = open
        end
    end
    return { userid_list = converted, invalid_open_userid_list = invalid }
end

-- external_userid ------------------------------------------------------------------------

local function to_service_external_userid(req)
    local info = req.token
    if not is_customized(info) then
        fail(48002, "to_service_external_userid needs a 代开发 app's access_token")
    end
    local id = req:str("external_userid", true, 40096)
    local c, _, open = customer_by_external(req.F, req.F.provider, info.corpid, id)
    if not c then
        fail(40096)
    end
    return { external_userid = open }
end

local function from_service_external_userid(req)
    self_built(req, "from_service_external_userid")
    local id = req:str("external_userid", true, 40096)
    local agentid = req:int("source_agentid", true, 41011)
    source_app(req, agentid)
    local P = req.F.provider
    local corpid = req.token.corpid
    for _, c in ipairs(customers_of(req.F, corpid)) do
        if provider.open_external_userid(P, corpid, c.external_userid) == id then
            return { external_userid = c.external_userid }
        end
    end
    fail(40096)
end

local function new_external_userids(req, chat)
    local P = provider_app(req, "get_new_external_userid")
    if chat then
        local chat_id = req:str("chat_id", true)
        -- customer groups are not modelled: any group id of the wr... shape
        -- holds every customer of the corp
        if chat_id:sub(1, 2) ~= "wr" then
            fail(40050, "invalid chat_id")
        end
    end
    local list = id_list(req, "external_userid_list", MAX_IDS)
    local items = json.array()
    for _, id in ipairs(list) do
        local c, _, open = customer_by_external(req.F, P, req.token.corpid, id)
        if c then
            items[#items + 1] = { external_userid = id, new_external_userid = open }
        end
    end
    return { items = items }
end

-- Mass-call ticket and quota ------------------------------------------------------------

local function apply_mass_call_ticket(req)
    local info = req.token
    local F = req.F
    if is_third_party(info) or is_customized(info) then
        local rec = provider.active_auth(info.suite_id, info.corpid)
        if not rec then
            fail(48004)
        end
        if store.now() - (rec.installed_at or 0) > MASS_CALL_WINDOW then
            fail(48002, "a mass_call_ticket is given only within 3 months of the authorization")
        end
    elseif is_self_built(info) then
        -- the upstream app of a 上下游 share
        local shares = info.corpid == F.upstream.corpid and F.shares[info.agentid]
        if not (shares and shares[1] and shares[1][1]) then
            fail(48002, "only an upstream app shared through 上下游 gets a mass_call_ticket")
        end
    else
        fail(48002, "a downstream corp's token gets no mass_call_ticket")
    end
    if not store.add("masscall:" .. info.corpid, true) then
        fail(48002, "the corp's mass_call_ticket was given already: once per corp")
    end
    local ticket = store.random_string(64)
    store.set_json("mct:" .. ticket, { corpid = info.corpid, expires_at = store.now() + MASS_CALL_TTL })
    return { mass_call_ticket = ticket }
end

-- mass_call_ticket(req) -> true when the request carries a valid ticket of
-- its corp (the quota does not apply then); 40058 for another one
function _M.mass_call_ticket(req)
    local ticket = req:str("mass_call_ticket")
    if not ticket then
        return false
    end
    local rec = #ticket <= 512 and store.get_json("mct:" .. ticket)
    if not rec or rec.corpid ~= req.token.corpid or rec.expires_at <= store.now() then
        fail(40058, "invalid mass_call_ticket")
    end
    return true
end

-- The documented quota: an hour, a Beijing day, a Beijing calendar month;
-- each limit an option of /__emulator/options.
local QUOTA = {
    { "h", function(now) return floor(now / 3600) end, "idconvert_hour_limit", 100000 },
    { "d", function(now) return floor((now + CHINA_OFFSET) / 86400) end, "idconvert_day_limit", 480000 },
    { "m", function(now) return os_date("!%Y-%m", floor(now + CHINA_OFFSET)) end,
      "idconvert_month_limit", 7500000 },
}

-- take_quota(scope): counts a call against the quota; 45009, not counted,
-- once one of its limits is spent.
function _M.take_quota(scope)
    local now = store.now()
    local keys, spent = {}, false
    for i, q in ipairs(QUOTA) do
        keys[i] = "quota:" .. scope .. ":" .. q[1] .. ":" .. q[2](now)
        if store.incr(keys[i], 1, 0) > store.option(q[3], q[4]) then
            spent = true
        end
    end
    if spent then
        for i = 1, #keys do
            store.incr(keys[i], -1, 0)
        end
        fail(45009, "unionid_to_external_userid quota of " .. scope .. " spent")
    end
end

-- unionid -> external_userid | pending_id ----------------------------------------------------

local function pending_for(P, corpid, unionid)
    local key = "pending3:" .. P.corpid .. ":" .. corpid .. ":" .. unionid
    local rec = store.get_json(key)
    if rec and rec.expires_at > store.now() then
        return rec.pending_id
    end
    local pending_id = "p" .. ngx.md5(key):sub(1, 24)
    store.set_json(key, { pending_id = pending_id, expires_at = store.now() + PENDING_TTL })
    return pending_id
end

local function unionid_to_external_userid(req)
    local P = provider_app(req, "idconvert/unionid_to_external_userid")
    local unionid = req:str("unionid", true)
    local openid = req:str("openid", true)
    local subject_type = req:int("subject_type") or 0
    if subject_type ~= 0 and subject_type ~= 1 then
        fail(40058, "subject_type must be 0 or 1")
    end
    check_openid(req.F, unionid, openid)
    if not _M.mass_call_ticket(req) then
        -- subject_type 0: the corp's quota (shared by every provider); 1: the provider's
        _M.take_quota(subject_type == 0 and "idconvert:corp:" .. req.token.corpid or "idconvert:provider:" .. P.corpid)
    end
    local corpid = req.token.corpid
    for _, c in ipairs(customers_of(req.F, corpid)) do
        if c.unionid == unionid then
            return { external_userid = provider.open_external_userid(P, corpid, c.external_userid) }
        end
    end
    -- not (yet) a customer: a pending_id, the same for 90 days
    return { pending_id = pending_for(P, corpid, unionid) }
end

local function external_userid_to_pending_id(req)
    local P = provider_app(req, "idconvert/batch/external_userid_to_pending_id")
    req:str("chat_id")
    local list = id_list(req, "external_userid", MAX_PENDING)
    local corpid = req.token.corpid
    local result = json.array()
    for _, id in ipairs(list) do
        local c = customer_by_external(req.F, P, corpid, id)
        local rec = c and store.get_json("pending3:" .. P.corpid .. ":" .. corpid .. ":" .. c.unionid)
        if rec and rec.expires_at > store.now() then
            result[#result + 1] = { external_userid = id, pending_id = rec.pending_id }
        end
    end
    return { result = result }
end

-- Suite and provider tokens -----------------------------------------------------------------

-- service/externalcontact/unionid_to_external_userid_3rd: the customer's ids
-- in every corp that installed the suite (or the one named)
local function unionid_to_external_userid_3rd(req, suite)
    local unionid = req:str("unionid", true)
    local openid = req:str("openid", true)
    local only = req:str("corpid")
    if suite.customized then
        fail(48002, "not for a 代开发 template")
    end
    check_openid(req.F, unionid, openid)
    local P = req.F.provider
    local list = json.array()
    for _, c in ipairs(all_customers(req.F)) do
        if c.unionid == unionid and (only == nil or only == c.corpid)
            and provider.active_auth(suite.suite_id, c.corpid) then
            list[#list + 1] = { corpid = c.corpid,
                                external_userid = provider.open_external_userid(P, c.corpid, c.external_userid) }
        end
    end
    return { external_userid_info = list }
end

local function finish_external_userid_migration(req, P)
    local corpid = req:str("corpid", true, 41002)
    if not provider.authorized_anywhere(P, corpid) then
        fail(40013, "not a corp that authorized this provider")
    end
    store.set("migrated:" .. corpid, true)
    return {}
end

-- Control ---------------------------------------------------------------------------------------

-- POST /__emulator/customer {"unionid", "openid", "corpid"[, "external_userid"]}: the
-- WeChat user becomes a customer of corpid (adds a member of it on WeChat).
-- Answer: the customer's external_userid in the corp's own form and, when
-- the fixture has a provider, in the provider's.
local function add_customer(t)
    local bad, body = t.bad, t.body()
    local F = require("wecom.emulator.fixture").get()
    for _, field in ipairs { "unionid", "openid", "corpid" } do
        if type(body[field]) ~= "string" or body[field] == "" then
            bad(field .. " must be a non-empty string")
        end
    end
    if not F.corps[body.corpid] then
        bad("corpid must be a corp of the fixture")
    end
    local known = openid_of(F, body.unionid)
    if known and known ~= body.openid then
        bad("openid does not belong to this unionid")
    end
    local ext = body.external_userid
    if ext == nil then
        ext = "wm" .. ngx.md5("customer/" .. body.corpid .. "/" .. body.unionid):sub(1, 24)
    elseif type(ext) ~= "string" or ext == "" then
        bad("external_userid must be a non-empty string")
    end
    local added = store.with_lock("newcustomers", function()
        local list = store.get_json("newcustomers") or {}
        for _, c in ipairs(all_customers(F)) do
            if c.corpid == body.corpid and (c.unionid == body.unionid or c.external_userid == ext) then
                return false
            end
        end
        list[#list + 1] = { unionid = body.unionid, openid = body.openid, corpid = body.corpid, external_userid = ext }
        store.set_json("newcustomers", list)
        return true
    end)
    if not added then
        bad("that customer (or external_userid) exists in the corp already")
    end
    local P = F.provider
    return t.ok { external_userid = ext,
                  open_external_userid = P and provider.open_external_userid(P, body.corpid, ext) }
end

function _M.register(handlers, t)
    handlers["POST /__emulator/customer"] = function() return add_customer(t) end
end

-- Routes ----------------------------------------------------------------------------------------

local function post(fn) return { method = "POST", token = "any", fn = fn } end

_M.routes = {
    ["/cgi-bin/service/externalcontact/unionid_to_external_userid_3rd"] =
        service.suite_route("POST", unionid_to_external_userid_3rd),
    ["/cgi-bin/service/externalcontact/finish_external_userid_migration"] =
        service.provider_route(finish_external_userid_migration),
    ["/cgi-bin/batch/userid_to_openuserid"] = post(userid_to_openuserid),
    ["/cgi-bin/batch/openuserid_to_userid"] = post(openuserid_to_userid),
    ["/cgi-bin/externalcontact/to_service_external_userid"] = post(to_service_external_userid),
    ["/cgi-bin/externalcontact/from_service_external_userid"] = post(from_service_external_userid),
    ["/cgi-bin/externalcontact/get_new_external_userid"] = post(function(req)
        return new_external_userids(req, false)
    end),
    ["/cgi-bin/externalcontact/groupchat/get_new_external_userid"] = post(function(req)
        return new_external_userids(req, true)
    end),
    ["/cgi-bin/idconvert/unionid_to_external_userid"] = post(unionid_to_external_userid),
    ["/cgi-bin/idconvert/batch/external_userid_to_pending_id"] = post(external_userid_to_pending_id),
    ["/cgi-bin/corp/apply_mass_call_ticket"] = { method = "GET", token = "any", fn = apply_mass_call_ticket },
}

return _M
