-- The control endpoints of the provider side (see control.lua):
--
--   POST /__emulator/suite_ticket {"suite_id"[, "url"]}
--   POST /__emulator/authorize    {"suite_id", "corpid", "action": "create" | "change" |
--                                  "cancel" | "reset"[, "url"][, "state"][, "userid"][, "privilege"]}
--   POST /__emulator/share        {"suite_id", "corpid"[, "to"][, "business_type"][, "url"]}
--   POST /__emulator/oauth_code, /__emulator/js_code with "suite_id": codes for
--                                 a third-party app (without it: control.lua's)
--
-- Each event is answered with what WeCom would POST to the suite's 指令回调
-- URL: {"query": {msg_signature, timestamp, nonce}, "body": "<xml>…",
-- "plaintext": "<xml>…"}, encrypted with the suite's Token/EncodingAESKey and
-- the suite_id as receive id (reference §3.1). With "url" it is POSTed there
-- too, once, and the receiver's "status" and "reply" (its body) are added.

local json = require "wecom.json"
local url = require "wecom.url"
local store = require "wecom.emulator.store"
local fixture = require "wecom.emulator.fixture"
local push = require "wecom.emulator.push"
local provider = require "wecom.emulator.provider"
local base = require "wecom.emulator.api.base"

local type = type
local next = next
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local concat = table.concat
local floor = math.floor

local _M = {}

local TIMEOUT_MS = 5000

-- Events (reference §3.3-§3.5) -------------------------------------------------

-- info_xml(fields): fields in the documented order, { name, value[, number] }
local function info_xml(fields)
    local parts = { "<xml>" }
    for _, f in ipairs(fields) do
        local name, value, number = f[1], f[2], f[3]
        parts[#parts + 1] = "<" .. name .. ">"
        parts[#parts + 1] = number and tostring(value) or push.cdata(value)
        parts[#parts + 1] = "</" .. name .. ">"
    end
    parts[#parts + 1] = "</xml>"
    return concat(parts)
end

local function now()
    return floor(store.now())
end

-- seal(suite, plaintext) -> event | nil, err: the envelope and the query
-- WeCom signs it with (ToUserName = SuiteId, AgentID empty, §3.1).
local function seal(suite, plaintext)
    local crypter, encrypted = push.seal(suite.callback, "suite " .. suite.suite_id, suite.suite_id, plaintext)
    if not crypter then
        return nil, encrypted
    end
    local timestamp, nonce, signature = push.signed(crypter, encrypted)
    crypter:close()
    return {
        query = { msg_signature = signature, timestamp = timestamp, nonce = nonce },
        body = push.envelope(suite.suite_id, encrypted, ""),
        plaintext = plaintext,
    }
end

-- One POST of the sealed event to target (push.parse_url's); the answer
-- gets the receiver's status and reply, or error.
local function deliver(event, target)
    local sep = target.path:find("?", 1, true) and "&" or "?"
    local path = target.path .. sep .. url.encode_query(event.query, "wecom emulator")
    local status, reply = push.http("POST", target, path, event.body, TIMEOUT_MS)
    if status then
        event.status, event.reply = status, reply
    else
        event.error = reply
    end
    return event
end

-- Requests ----------------------------------------------------------------------

local function need_provider(bad)
    local F = fixture.get()
    if not F.provider then
        bad("the fixture has no provider")
    end
    return F, F.provider
end

local function need_suite(bad, P, suite_id)
    local suite = type(suite_id) == "string" and P.suites[suite_id]
    if not suite then
        bad("suite_id must be a suite of the fixture's provider")
    end
    return suite
end

local function target_of(bad, body)
    if body.url == nil then
        return nil
    end
    local target = push.valid_url(body.url) and push.parse_url(body.url)
    if not target then
        bad("url must be an http:// or https:// URL")
    end
    return target
end

-- send(bad, suite, plaintext, target, extra) -> the event answer
local function send(bad, suite, plaintext, target, extra)
    local event, err = seal(suite, plaintext)
    if not event then
        bad(err)
    end
    for k, v in pairs(extra or {}) do
        event[k] = v
    end
    if target then
        deliver(event, target)
    end
    return event
end

local function check_state(bad, state)
    if state ~= nil and (type(state) ~= "string" or #state > 128 or not state:match("^[%w]*$")) then
        bad("state must be at most 128 characters of [a-zA-Z0-9]")
    end
end

local function check_userid(bad, corp, userid)
    if userid ~= nil and (type(userid) ~= "string" or not (corp.users_by_id and corp.users_by_id[userid])) then
        bad("userid must be a user of the corp")
    end
end

-- privilege: replaces fields of the installed app's range on "change"
local PRIVILEGE_LISTS = { "allow_party", "allow_user", "allow_tag", "extra_party", "extra_user", "extra_tag" }

local function check_privilege(bad, p)
    if p == nil then
        return nil
    end
    if type(p) ~= "table" or p[1] ~= nil then
        bad("privilege must be an object")
    end
    local out = {}
    for k, v in pairs(p) do
        local ok = false
        if k == "level" then
            ok = type(v) == "number" and v >= 0 and v <= 3 and v == floor(v)
        else
            for _, name in ipairs(PRIVILEGE_LISTS) do
                if k == name and type(v) == "table" and (next(v) == nil or v[1] ~= nil) then
                    ok = true
                end
            end
        end
        if not ok then
            bad("privilege." .. tostring(k) .. " is not a privilege field of the right type")
        end
        out[k] = v
    end
    return out
end

-- Handlers ----------------------------------------------------------------------

local function suite_ticket(t)
    local body = t.body()
    local _, P = need_provider(t.bad)
    local suite = need_suite(t.bad, P, body.suite_id)
    local target = target_of(t.bad, body)
    local ticket, expires_in = provider.mint_ticket(suite)
    local xml = info_xml {
        { "SuiteId", suite.suite_id }, { "InfoType", "suite_ticket" }, { "TimeStamp", now(), true },
        { "SuiteTicket", ticket },
    }
    return t.ok(send(t.bad, suite, xml, target, { suite_ticket = ticket, expires_in = expires_in }))
end

local ACTIONS = { create = true, change = true, cancel = true, reset = true }

local function authorize(t)
    local bad, body = t.bad, t.body()
    local _, P = need_provider(bad)
    local suite = need_suite(bad, P, body.suite_id)
    local corpid = body.corpid
    local entry = type(corpid) == "string" and P.corps[corpid]
    if not entry then
        bad("corpid must be a corp of the fixture's provider.corps")
    end
    local action = body.action
    if not ACTIONS[action] then
        bad("action must be create, change, cancel or reset")
    end
    local target = target_of(bad, body)
    check_state(bad, body.state)
    check_userid(bad, entry.corp, body.userid)
    local privilege = check_privilege(bad, body.privilege)
    if privilege and action ~= "change" then
        bad("privilege goes with action change")
    end
    local extra = { suite_id = suite.suite_id, corpid = corpid, action = action }
    local xml
    if action == "create" then
        local rec, code = provider.install(suite, corpid, {
            state = body.state, userid = body.userid or entry.admins[1],
        })
        if not rec then
            bad(code)
        end
        extra.auth_code, extra.agentid = code, rec.agentid
        xml = info_xml {
            { "SuiteId", suite.suite_id }, { "AuthCode", code }, { "InfoType", "create_auth" },
            { "TimeStamp", now(), true }, { "State", body.state or "" }, { "ExtraInfo", "" },
        }
    elseif action == "change" then
        local rec, err = provider.change(suite, corpid, privilege)
        if not rec then
            bad(err)
        end
        local fields = {
            { "SuiteId", suite.suite_id }, { "InfoType", "change_auth" }, { "TimeStamp", now(), true },
            { "AuthCorpId", corpid },
        }
        if body.state then
            fields[#fields + 1] = { "State", body.state }
        end
        xml = info_xml(fields)
    elseif action == "cancel" then
        local rec, err = provider.cancel(suite, corpid)
        if not rec then
            bad(err)
        end
        xml = info_xml {
            { "SuiteId", suite.suite_id }, { "InfoType", "cancel_auth" }, { "TimeStamp", now(), true },
            { "AuthCorpId", corpid },
        }
    else
        if not suite.customized then
            bad("reset rotates a 代开发 app's secret: suite_id must be a 代开发 template (customized)")
        end
        local rec, code = provider.reset(suite, corpid)
        if not rec then
            bad(code)
        end
        extra.auth_code = code
        -- no AuthCorpId in this one (§3.4)
        xml = info_xml {
            { "SuiteId", suite.suite_id }, { "AuthCode", code }, { "InfoType", "reset_permanent_code" },
            { "TimeStamp", now(), true },
        }
    end
    return t.ok(send(bad, suite, xml, target, extra))
end

-- Sharing a third-party app installs it in each downstream corp, each with
-- its own create_auth, then share_chain_change (上下游, business_type 1) or
-- share_agent_change (企业互联, 0) names the upstream corp (§2.4, §3.5).
local function share(t)
    local bad, body = t.bad, t.body()
    local F, P = need_provider(bad)
    local suite = need_suite(bad, P, body.suite_id)
    if suite.customized then
        bad("a 代开发 app is shared like a self-built one; share takes a third-party suite")
    end
    local corpid = body.corpid
    local up = type(corpid) == "string" and provider.active_auth(suite.suite_id, corpid)
    if not up then
        bad("corpid must be a corp that has the suite installed")
    end
    local bt = body.business_type
    if bt == nil then
        bt = 1
    elseif bt ~= 0 and bt ~= 1 then
        bad("business_type must be 0 or 1")
    end
    local target = target_of(bad, body)
    local to = body.to
    if to == nil then
        -- every downstream corp of the fixture that does not have it yet
        to = {}
        for _, corp in ipairs(F.data.downstream or {}) do
            if corp.corpid ~= corpid and not provider.active_auth(suite.suite_id, corp.corpid) then
                to[#to + 1] = corp.corpid
            end
        end
    else
        if type(to) ~= "table" or to[1] == nil then
            bad("to must be a non-empty list of corpids")
        end
        for _, id in ipairs(to) do
            if type(id) ~= "string" or not F.corps[id] or id == corpid then
                bad("to: " .. tostring(id) .. " is not another corp of the fixture")
            end
            if provider.active_auth(suite.suite_id, id) then
                bad("to: " .. id .. " has the suite installed already")
            end
        end
    end
    local events = json.array()
    local installed = {}
    for _, id in ipairs(to) do
        local rec, code = provider.install(suite, id, { shared_from = { corpid = corpid, share_type = bt } })
        if rec then
            installed[#installed + 1] = id
            local xml = info_xml {
                { "SuiteId", suite.suite_id }, { "AuthCode", code }, { "InfoType", "create_auth" },
                { "TimeStamp", now(), true }, { "State", "" }, { "ExtraInfo", "" },
            }
            events[#events + 1] = send(bad, suite, xml, target,
                { info_type = "create_auth", corpid = id, auth_code = code, agentid = rec.agentid })
        end
    end
    provider.add_shares(suite, corpid, bt, installed)
    local info_type = bt == 1 and "share_chain_change" or "share_agent_change"
    local xml = info_xml {
        { "SuiteId", suite.suite_id }, { "InfoType", info_type }, { "TimeStamp", now(), true },
        { "AppId", up.agentid, true }, { "CorpId", corpid }, { "AgentId", up.agentid, true },
    }
    events[#events + 1] = send(bad, suite, xml, target, { info_type = info_type, corpid = corpid })
    return t.ok { suite_id = suite.suite_id, corpid = corpid, business_type = bt, events = events }
end

-- Codes for a third-party app's identity calls (getuserinfo3rd, service
-- jscode2session): a member of a fixture corp, or (OAuth) a visitor's openid.
local function mint_suite_code(t, kind, body)
    local bad = t.bad
    local F, P = need_provider(bad)
    local suite = need_suite(bad, P, body.suite_id)
    if suite.customized then
        bad("a 代开发 app uses the corp's own OAuth (agentid), not suite_id")
    end
    local fields = { suite_id = suite.suite_id }
    if kind == "suite_oauth" and body.openid ~= nil then
        if type(body.openid) ~= "string" or body.openid == "" then
            bad("openid must be a non-empty string")
        end
        fields.openid = body.openid
    else
        local corp = type(body.corpid) == "string" and F.corps[body.corpid]
        if not corp then
            bad("corpid must be a corp of the fixture")
        end
        if type(body.userid) ~= "string" or not (corp.users_by_id and corp.users_by_id[body.userid]) then
            bad("userid must be a user of that corp")
        end
        fields.corpid, fields.userid = body.corpid, body.userid
    end
    if kind == "suite_oauth" then
        local scope = body.scope or "snsapi_base"
        if scope ~= "snsapi_base" and scope ~= "snsapi_privateinfo" and scope ~= "snsapi_userinfo" then
            bad("scope must be snsapi_base, snsapi_userinfo or snsapi_privateinfo")
        end
        fields.scope = scope
    end
    local code, expires_in = base.mint_code(kind, fields)
    return t.ok { code = code, expires_in = expires_in }
end

-- register(handlers, t): adds the handlers to control.lua's table; t has
-- bad(msg) (a 400), body() (the JSON object sent) and ok(table).
function _M.register(handlers, t)
    handlers["POST /__emulator/suite_ticket"] = function() return suite_ticket(t) end
    handlers["POST /__emulator/authorize"] = function() return authorize(t) end
    handlers["POST /__emulator/share"] = function() return share(t) end
    for name, kind in pairs { oauth_code = "suite_oauth", js_code = "suite_js" } do
        local key = "POST /__emulator/" .. name
        local corp_form = handlers[key]
        handlers[key] = function(...)
            local body = t.body()
            if body.suite_id == nil then
                return corp_form(...)
            end
            return mint_suite_code(t, kind, body)
        end
    end
end

return _M
