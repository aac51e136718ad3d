-- wecom.suite: a service provider's third-party app (第三方应用) or 代开发
-- template ("dk..."), and a client for every corp that authorized it.
--
--   local suite = wecom.suite{ suite_id =, suite_secret =, token =, aes_key =,
--                              provider_corpid =, store = }
--   suite:receive(query, body)  -- the 指令回调/数据回调 URL: tickets, installs
--   local corp = suite:corp(corpid)  -- get/post/token, chain, JSAPI...
--   suite:oauth_url{...}, suite:user_by_code(code), suite:user_detail(ticket),
--   suite:jscode2session(js_code), suite:unionid_to_external_userid_3rd{...}
--                                    -- wecom.api.identity3rd, loaded on first use
--
-- The pieces: wecom.api.service (the /cgi-bin/service/* calls),
-- wecom.suite.records (what is kept in the store, under which keys),
-- wecom.suite.events (what receive does for each InfoType), wecom.client
-- (the requests, retries and tokens of every client).
--
-- Secrets: the suite_secret and the permanent codes live in closures and in
-- the store, never in a field; every error passes a scrubber that knows
-- them, and tostring shows ids only.

local error = error
local ipairs = ipairs
local pcall = pcall
local setmetatable = setmetatable
local type = type

local callback = require "wecom.callback"
local client = require "wecom.client"
local core = require "wecom.core"
local errors = require "wecom.errors"
local events = require "wecom.suite.events"
local options = require "wecom.options"
local parallel = require "wecom.parallel"
local records = require "wecom.suite.records"
local scrub = require "wecom.scrub"
local service = require "wecom.api.service"
local token = require "wecom.token"

local _M = {}

local mt = {}

-- methods written by the endpoint modules, loaded on first use (as
-- wecom.client's LAZY_METHODS): name -> { module, function name }; they
-- take the suite first and raise naming wecom.suite:<name>
local ID3 = "wecom.api.identity3rd"
local LAZY_METHODS = {
    oauth_url = { ID3, "oauth_url" },
    user_by_code = { ID3, "user_by_code" },
    user_detail = { ID3, "user_detail" },
    jscode2session = { ID3, "jscode2session" },
    unionid_to_external_userid_3rd = { ID3, "unionid_to_external_userid_3rd" },
}
mt.__index = client.lazy_index(mt, LAZY_METHODS)

function mt.__tostring(self)
    return "wecom.suite(suite_id=" .. self.suite_id .. ")"
end

local SUITE_ID = errors.kind("a suite id (letters, digits, '_' or '-')", function(v)
    return type(v) == "string" and v:match("^[%w_%-]+$") ~= nil and #v <= 128
end)
local AES_KEY = errors.kind("the 43-character EncodingAESKey", function(v)
    return type(v) == "string" and #v == 43 and v:match("^%w+$") ~= nil
end)

-- what wecom.suite takes besides the connection options of wecom.options
local SUITE_OPTIONS = {
    { "suite_id", SUITE_ID, required = true },
    { "suite_secret", errors.string, required = true },
    { "token", errors.string },          -- the callback Token (指令回调 and 数据回调)
    { "aes_key", AES_KEY },              -- the callback EncodingAESKey
    { "provider_corpid", errors.string },
    { "web_base_url", options.BASE_URL },
}

-- A rejected ticket is not offered again for this long (per process): a
-- 40085 is cured by WeCom's next push, never by asking again and again.
local REJECTED_FOR = 60
local rejected = {}    -- ns -> { sha = SHA-1 of the ticket, at = monotonic time }

local GETTOKEN = service.PATH.gettoken
local CORPID = records.CORPID

local function not_authorized(self, corpid)
    return errors.new("token", "corp " .. corpid .. " has not authorized suite " .. self.suite_id
        .. " (no permanent code in the store)")
end

-- the stored authorization of corpid -> record | nil, err (a corp without
-- one has not authorized the suite)
local function authorization(self, corpid)
    local rec, err = records.corp(self.store, self._ns, corpid)
    if not rec then
        return nil, err or not_authorized(self, corpid)
    end
    return rec
end

local function no_ticket(self, what)
    return errors.new("token", what .. " for suite " .. self.suite_id .. ": WeCom pushes one to the"
        .. " 指令回调 URL every 10 minutes (suite:receive keeps it); the console's 刷新Ticket pushes one now",
        { errcode = 40085, method = "POST", path = service.PATH.suite_token })
end

---------------------------------------------------------------------------
-- Constructor
---------------------------------------------------------------------------

-- suite{ suite_id, suite_secret [, token, aes_key, provider_corpid,
--        web_base_url, and the options of wecom.options] } -> suite
function _M.new(opts)
    local where = "wecom.suite"
    local o = options.resolve(where, opts, SUITE_OPTIONS)
    if (o.token == nil) ~= (o.aes_key == nil) then
        errors.usage(where, "opts.token and opts.aes_key go together (the app's callback settings)")
    end
    local suite_id = o.suite_id
    local self = setmetatable(options.settings_into({
        suite_id = suite_id,
        customized = suite_id:sub(1, 2) == "dk",     -- a 代开发 template
        provider_corpid = o.provider_corpid,
        web_base_url = o.web_base_url and o.web_base_url:gsub("/+$", "") or nil,
        transport = options.new_transport(o),
    }, o), mt)
    local ns = records.ns(suite_id, o.base_url)
    self._ns = ns
    -- the scrubber the corp clients share (each adds its permanent code)
    self._plain_scrub = scrub.new()

    -- the secret and the ticket in use live only in these closures
    local secret = o.suite_secret
    local secret_scrub = scrub.new(secret)
    local ticket_in_use
    local store = self.store
    self._api = client.build("plain", options.settings_into({
        kind = "suite",
        name = "wecom.suite(suite_id=" .. suite_id .. ")",
        token_key = records.token_key(ns),
        token_param = "suite_access_token",
        transport = self.transport,
        scrub = function(s, ...)
            return secret_scrub(s, ticket_in_use, ...)
        end,
        fetch_token = function(api)
            local ticket, terr = records.ticket(store, ns)
            if not ticket then
                return nil, terr or no_ticket(self, "no suite_ticket yet")
            end
            local sha = core.sha1_hex(ticket)
            local r = rejected[ns]
            if r and r.sha == sha and core.monotonic() - r.at < REJECTED_FOR then
                return nil, no_ticket(self, "the suite_ticket was rejected (40085: expired, or another suite's)")
            end
            ticket_in_use = ticket
            local value, err = client.credential(api, "POST", service.PATH.suite_token, nil, {
                suite_id = suite_id, suite_secret = secret, suite_ticket = ticket,
            }, "suite_access_token", false)
            if not value and err.errcode == 40085 then
                rejected[ns] = { sha = sha, at = core.monotonic() }
                return nil, no_ticket(self, "the suite_ticket was rejected (40085: expired, or another suite's)")
            end
            return value, err
        end,
    }, self))

    if o.token then
        local cb_token, aes_key = o.token, o.aes_key
        -- 指令回调 posts carry the suite_id, 数据回调 posts an authorized
        -- corp's corpid; URL checks the provider's corpid (reference §3.1)
        local function authorized(rid)
            if rid == suite_id then
                return true
            end
            if rid == "" then
                return false
            end
            local ok, rec = pcall(records.corp, store, ns, rid)
            return ok and rec ~= nil
        end
        self._post_cb = callback.new { token = cb_token, aes_key = aes_key, receive_id = authorized }
        local provider_corpid = o.provider_corpid
        self._get_cb = callback.new { token = cb_token, aes_key = aes_key, receive_id = function(rid)
            return (provider_corpid ~= nil and rid == provider_corpid) or authorized(rid)
        end }
    end
    return self
end

---------------------------------------------------------------------------
-- Suite token and ticket
---------------------------------------------------------------------------

-- suite:token([{ force = true }]) -> suite_access_token, expires_at | nil, err
-- suite:get(path [, query [, opts]]) / suite:post(path, body [, query [, opts]])
-- -> data | nil, err: any suite-token endpoint, suite_access_token injected
client.plain_front(mt)

local ISSUED_AT = errors.kind("a Unix time in seconds", function(v)
    return type(v) == "number" and v > 0 and v < 2 ^ 40
end)

-- suite:set_ticket(ticket [, issued_at]) -> true | false (older than the
-- stored one) | nil, err
-- A ticket received some other way; issued_at: when WeCom issued it
-- (default now).  Kept for the rest of its 30 minutes.
function mt.set_ticket(self, ticket, issued_at)
    local where = "wecom.suite:set_ticket"
    errors.need(where, "ticket", ticket, errors.string)
    errors.opt(where, "issued_at", issued_at, ISSUED_AT)
    if #ticket > 512 then
        errors.usage(where, "ticket must be at most 512 bytes (got " .. #ticket .. ")")
    end
    return records.set_ticket(self.store, self._ns, ticket, issued_at)
end

---------------------------------------------------------------------------
-- Installs
---------------------------------------------------------------------------

-- suite:pre_auth_code() -> pre_auth_code, expires_at | nil, err
function mt.pre_auth_code(self)
    return service.pre_auth_code(self._api)
end

-- suite:set_session_info(pre_auth_code [, { auth_type = 0|1, appid = {...} }]) -> true | nil, err
function mt.set_session_info(self, code, opts)
    return service.set_session_info(self._api, "wecom.suite:set_session_info", code, opts or {})
end

-- suite:install_url{ redirect_uri [, state, test = true] } -> url, expires_at | nil, err
-- A fresh pre_auth_code each time (one install each); test = true makes it
-- a test install (set_session_info with auth_type 1).
function mt.install_url(self, opts)
    local where = "wecom.suite:install_url"
    service.install_options(where, opts)
    if self.customized then
        errors.usage(where, "a 代开发 template is installed from its QR code (provider:customized_auth_url)")
    end
    local code, expires_at = service.pre_auth_code(self._api)
    if not code then
        return nil, expires_at
    end
    if opts.test then
        local ok, err = service.set_session_info(self._api, where, code, { auth_type = 1 })
        if not ok then
            return nil, err
        end
    end
    return service.install_link(self.web_base_url, self.suite_id, code, opts), expires_at
end

local auth_mt = {}
auth_mt.__index = auth_mt

function auth_mt.__tostring(auth)
    return "wecom.auth(suite_id=" .. auth.suite_id .. ", corpid=" .. auth.corpid
        .. ", agentid=" .. (auth.agentid and ("%d"):format(auth.agentid) or "?") .. ")"
end

-- the answer's fields an auth carries (besides corpid, agentid, corp_name)
local AUTH_FIELDS = { "auth_corp_info", "auth_user_info", "auth_info", "dealer_corp_info",
    "register_code_info", "edition_info" }

-- The authorization's token (an earlier install's, an old 代开发 secret's)
-- and its JSAPI tickets are dead once the permanent code changes.
local function drop_corp_tokens(self, corpid)
    local key = records.corp_token_key(self._ns, corpid)
    for _, kind in ipairs({ "jsapi", "agent_config" }) do
        records.delete(self.store, token.ticket_key(key, kind))
    end
    return records.delete(self.store, key)
end

-- keep(self, record [, listed]) -> true | nil, err: the authorization
-- into the store (listed: the corp is in the index already)
local function keep(self, rec, listed)
    rec.updated_at = core.now()
    return records.put_corp(self.store, self._ns, rec, listed)
end

-- details(self, rec) -> get_auth_info's answer | nil, err; the record
-- gets the agentid and corp name from it (and is stored again)
local function details(self, rec)
    local info, err = service.auth_info(self._api, rec.corpid, rec.permanent_code)
    if not info then
        err.errmsg = scrub.value(err.errmsg, rec.permanent_code)
        return nil, err
    end
    rec.agentid = service.agentid(info) or rec.agentid
    rec.corp_name = service.corp_name(info) or rec.corp_name
    local ok, serr = keep(self, rec, true)
    if not ok then
        return nil, serr
    end
    return info
end

-- suite:authorize(auth_code) -> auth | nil, err
-- Exchanges an AuthCode (install redirect, create_auth, reset_permanent_code)
-- for the permanent code (v2 get_permanent_code), stores it (durable), then
-- reads get_auth_info.  auth = { suite_id, corpid, corp_name, agentid,
-- permanent_code, state, auth_corp_info, auth_user_info, auth_info, ... }:
-- permanent_code is handed out this once (persist it if the store does not
-- outlive the process); tostring(auth) never shows it.  When the store or
-- get_auth_info fails after the exchange, auth comes back all the same
-- with auth.error set: the AuthCode is spent, the code must not be lost.
function mt.authorize(self, auth_code)
    errors.need("wecom.suite:authorize", "auth_code", auth_code, errors.string)
    local got, err = service.permanent_code(self._api, auth_code)
    if not got then
        return nil, err
    end
    local answer = got.answer
    local now = core.now()
    local rec = {
        corpid = got.corpid,
        permanent_code = got.permanent_code,
        corp_name = service.corp_name(answer),
        state = type(answer.state) == "string" and #answer.state <= 128 and answer.state or nil,
        installed_at = now,
    }
    local auth = setmetatable({ suite_id = self.suite_id, corpid = rec.corpid,
        permanent_code = rec.permanent_code, state = rec.state }, auth_mt)

    drop_corp_tokens(self, rec.corpid)
    local ok, serr = keep(self, rec)
    local info
    if ok then
        records.mark_exchanged(self.store, self._ns, auth_code, rec.corpid)
        info, serr = details(self, rec)
    end
    auth.error = serr
    for _, t in ipairs({ answer, info or {} }) do
        for _, k in ipairs(AUTH_FIELDS) do
            if t[k] ~= nil then
                auth[k] = t[k]
            end
        end
    end
    auth.agentid, auth.corp_name = rec.agentid, rec.corp_name
    return auth
end

-- suite:set_permanent_code(corpid, permanent_code [, agentid]) -> true | nil, err
-- A permanent code kept elsewhere (the memory store loses it at exit).
function mt.set_permanent_code(self, corpid, code, agentid)
    local where = "wecom.suite:set_permanent_code"
    errors.need(where, "corpid", corpid, CORPID)
    errors.need(where, "permanent_code", code, errors.string)
    errors.opt(where, "agentid", agentid, errors.id)
    local old, err = records.corp(self.store, self._ns, corpid)
    if err then
        return nil, err
    end
    local same = old ~= nil and old.permanent_code == code
    if old and not same then
        drop_corp_tokens(self, corpid)
    end
    local rec = old or { corpid = corpid, installed_at = core.now() }
    rec.permanent_code = code
    rec.agentid = agentid or (same and old.agentid) or nil
    return keep(self, rec)
end

-- suite:auth_info(corpid) -> get_auth_info's answer | nil, err
-- (the stored agentid and corp name follow it)
function mt.auth_info(self, corpid)
    errors.need("wecom.suite:auth_info", "corpid", corpid, CORPID)
    local rec, err = authorization(self, corpid)
    if not rec then
        return nil, err
    end
    return details(self, rec)
end

-- suite:forget(corpid) -> true | nil, err
-- What cancel_auth does: the corp's authorization and tokens leave the store.
function mt.forget(self, corpid)
    errors.need("wecom.suite:forget", "corpid", corpid, CORPID)
    local key = records.corp_token_key(self._ns, corpid)
    return records.forget_corp(self.store, self._ns, corpid,
        { token.ticket_key(key, "jsapi"), token.ticket_key(key, "agent_config") })
end

---------------------------------------------------------------------------
-- Authorized corps
---------------------------------------------------------------------------

local DOWNSTREAM_OPTIONS = {
    corpid = CORPID,
    agentid = errors.id,
    business_type = errors.kind("0 (企业互联) or 1 (上下游)", function(v) return v == 0 or v == 1 end),
}

local corp_client

-- A third-party app reaches a downstream corp as that corp's own install
-- (corpgroup/corp/gettoken is for self-built and 代开发 apps): the
-- downstream client of its corp client is the suite's client of that corp.
local function third_party_downstream(self)
    return function(_, opts)
        errors.options("wecom:downstream", opts, DOWNSTREAM_OPTIONS, { "corpid" }, 3)
        return corp_client(self, { corpid = opts.corpid, agentid = opts.agentid })
    end
end

-- corp_token(self, cl, rec) -> the corp's token with rec's permanent code
-- (get_corp_token; a 代开发 app: gettoken with the code as its secret)
local function corp_token(self, cl, rec)
    local code = rec.permanent_code
    if self.customized then
        return client.credential(cl, "GET", GETTOKEN, { corpid = rec.corpid, corpsecret = code },
            nil, "access_token", false)
    end
    local value, expires_at = client.credential(self._api, "POST", service.PATH.corp_token, nil,
        { auth_corpid = rec.corpid, permanent_code = code }, "access_token", true)
    if not value then
        expires_at.errmsg = scrub.value(expires_at.errmsg, code)
    end
    return value, expires_at
end

-- what tostring shows for a corp client (built when asked: a fan-out makes
-- a client per corp)
local function corp_client_name(c)
    return "wecom.corp(suite_id=" .. c.suite_id .. ", corpid=" .. c.corpid .. ", agentid="
        .. (c.agentid and ("%d"):format(c.agentid) or "?") .. ")"
end

-- A record read this recently (by suite:corp or each_corp's task, right
-- before the client is made) serves the client's first token fetch.
local FRESH_RECORD = 1

-- corp_client(self, rec [, just_read]) -> the client of an authorized
-- corp; its token fetch reads the permanent code from the store each time
-- (a 代开发 secret may have been reset by another process), but for the
-- first one right after the record was read (just_read: rec is the stored
-- record, read a moment ago)
function corp_client(self, rec, just_read)
    local corpid = rec.corpid
    local store, ns = self.store, self._ns
    local code_in_use = rec.permanent_code
    local fresh, fresh_at = just_read and rec or nil, core.monotonic()
    local plain_scrub = self._plain_scrub
    local customized = self.customized
    local downstream = self._downstream
    if downstream == nil and not customized then
        downstream = third_party_downstream(self)     -- one for all the suite's corp clients
        self._downstream = downstream
    end
    local c = client.build("corp", options.settings_into({
        name = corp_client_name,
        corpid = corpid,
        agentid = rec.agentid,
        token_key = records.corp_token_key(ns, corpid),
        transport = self.transport,
        scrub = function(s, ...)
            return plain_scrub(s, code_in_use, ...)
        end,
        downstream = downstream,
        third_party = not customized,
        fetch_token = function(cl)
            local cur, err
            local used_fresh = fresh ~= nil and core.monotonic() - fresh_at < FRESH_RECORD
            if used_fresh then
                cur = fresh
            else
                cur, err = records.corp(store, ns, corpid)
            end
            fresh = nil
            if not cur then
                return nil, err or not_authorized(self, corpid)
            end
            code_in_use = cur.permanent_code
            local value, expires_at = corp_token(self, cl, cur)
            if value == nil and used_fresh then
                -- the code may have changed since the record was read (a
                -- 代开发 secret reset): the stored one, if it is another
                local again = records.corp(store, ns, corpid)
                if again and again.permanent_code ~= cur.permanent_code then
                    code_in_use = again.permanent_code
                    value, expires_at = corp_token(self, cl, again)
                end
            end
            return value, expires_at
        end,
    }, self))
    c.suite_id = self.suite_id
    return c
end

-- suite:corp(corpid) -> client | nil, err
-- The client of an authorized corp: wecom.new's surface (get/post/token,
-- chain, linkedcorp, shared_corps, downstream, each_shared_corp), JSAPI
-- (jsapi_config/agent_config: the corp's tickets, cached per corp and app)
-- and the account-ID conversions (wecom.api.idconvert); its token from
-- get_corp_token (third-party) or gettoken with the permanent code as
-- secret (代开发).  A third-party app's users are the suite's to identify
-- (suite:user_by_code); a 代开发 app's corp client has the corp forms.
function mt.corp(self, corpid)
    errors.need("wecom.suite:corp", "corpid", corpid, CORPID)
    local rec, err = authorization(self, corpid)
    if not rec then
        return nil, err
    end
    if rec.agentid == nil then
        -- stored without its details (set_permanent_code, a failed
        -- get_auth_info): read them once now; without them the client
        -- still works, for every call that needs no agentid
        details(self, rec)
    end
    return corp_client(self, rec, true)
end

-- suite:corps() -> iterator of { corpid, corp_name, agentid, state,
-- installed_at, updated_at } for every corp the store knows; a store
-- failure raises the error object
function mt.corps(self)
    local store, ns = self.store, self._ns
    local ids = records.corpids(store, ns)
    return function()
        while true do
            local id = ids()
            if id == nil then
                return nil
            end
            local rec, err = records.corp(store, ns, id)
            if err then
                error(err, 0)
            end
            if rec then
                return records.public(rec)
            end
        end
    end
end

local EACH_OPTIONS = { concurrency = errors.positive }

-- suite:each_corp(fn [, { concurrency = 16 }]) -> results (as wecom.parallel)
-- Calls fn(client, corp) for every authorized corp, concurrently (corp: as
-- suite:corps() yields it).  A store failure listing the corps raises.
function mt.each_corp(self, fn, opts)
    local where = "wecom.suite:each_corp"
    errors.need(where, "fn", fn, errors.func)
    if opts ~= nil then
        errors.options(where, opts, EACH_OPTIONS)
    end
    -- each task reads its corp's record itself: the reads overlap the
    -- requests instead of all coming first
    local store, ns = self.store, self._ns
    local tasks = {}
    for corpid in records.corpids(store, ns) do
        tasks[#tasks + 1] = function()
            local rec, err = authorization(self, corpid)
            if not rec then
                return nil, err   -- forgotten meanwhile
            end
            return fn(corp_client(self, rec, true), records.public(rec))
        end
    end
    return parallel.run(tasks, { concurrency = opts and opts.concurrency })
end

---------------------------------------------------------------------------
-- Callbacks
---------------------------------------------------------------------------

local function callbacks(self, where)
    if not self._post_cb then
        errors.usage(where, "the suite has no callback settings (wecom.suite{ token =, aes_key = })", 3)
    end
    return self._post_cb, self._get_cb
end

-- suite:verify_url(query) -> echo | nil, err   (the GET URL check of either URL)
function mt.verify_url(self, query)
    local _, cb = callbacks(self, "wecom.suite:verify_url")
    return cb:verify_url(query)
end

-- suite:decrypt(query, body) -> event | nil, err
-- Verifies and decrypts a POST to either URL (receive ids: the suite_id,
-- an authorized corp's corpid), without the bookkeeping: receive's first
-- half, for a server that answers first and keeps the event after
-- (wecom.ngx.callback_handler{ suite = }).
function mt.decrypt(self, query, body)
    local cb = callbacks(self, "wecom.suite:decrypt")
    return cb:decrypt(query, body)
end

-- suite:handle(event) -> true | nil, err
-- receive's second half: the bookkeeping of a decrypted event
-- (wecom.suite.events); other events pass.
function mt.handle(self, event)
    errors.need("wecom.suite:handle", "event", event, errors.table)
    return events.bookkeeping(self, event)
end

-- suite:receive(query, body) -> event, reply | nil, err
-- A POST to the 指令回调 or 数据回调 URL: verified, decrypted, and the
-- bookkeeping of its InfoType done.  reply is the body to answer with
-- ("success").  A failed bookkeeping step returns nil, err with err.event
-- set, so the answer can make WeCom send it again.
function mt.receive(self, query, body)
    local cb = callbacks(self, "wecom.suite:receive")
    local event, err = cb:decrypt(query, body)
    if not event then
        return nil, err
    end
    local ok, berr = events.bookkeeping(self, event)
    if not ok then
        berr.event = event
        return nil, berr
    end
    return event, "success"
end

return _M
