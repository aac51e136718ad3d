-- wecom.client: the app client and the downstream client.
--
-- Both share one implementation; they differ only in where their access
-- token comes from (gettoken with the app's secret, or corpgroup/corp/gettoken
-- with the upstream app's token).  wecom.suite and wecom.provider build
-- theirs with _M.build: an authorized corp's client (the app's surface), and
-- plain clients that send a suite or provider token instead.  Every request gets a token from the token
-- store (wecom.token), sends it as the access_token query parameter, and
-- follows wecom.retry's policy: refresh a rejected token once, retry what is
-- safe to retry with backoff, give up with an error object otherwise.
--
-- Around it: the options (wecom.options, each declared once), credential
-- scrubbing (wecom.scrub: neither the secret nor a token ever gets into an
-- error), JSON (wecom.json) and query strings (wecom.url).  The endpoint
-- families live in wecom.api.* and are attached on first use: app.chain,
-- app.linkedcorp (namespaces), app:shared_corps, app:oauth_url, ... (methods).

local error = error
local getmetatable = getmetatable
local ipairs = ipairs
local pairs = pairs
local pcall = pcall
local rawset = rawset
local require = require
local setmetatable = setmetatable
local str_byte = string.byte
local str_find = string.find
local str_sub = string.sub
local tostring = tostring
local type = type

local errors = require "wecom.errors"
local json = require "wecom.json"
local options = require "wecom.options"
local parallel = require "wecom.parallel"
local retry = require "wecom.retry"
local scrub = require "wecom.scrub"
local token = require "wecom.token"
local url = require "wecom.url"

local tointeger = math.tointeger  -- nil on LuaJIT

local _M = {}

local MAX_BACKOFF = retry.MAX_BACKOFF

local GETTOKEN_PATH = "/cgi-bin/gettoken"
local JSON_HEADERS = { ["Content-Type"] = "application/json; charset=utf-8" }  -- read-only
local READ = { idempotent = true }                                               -- read-only
local DOWNSTREAM_GETTOKEN_PATH = "/cgi-bin/corpgroup/corp/gettoken"
local TICKETS = {
    jsapi = { path = "/cgi-bin/get_jsapi_ticket", query = "" },
    agent_config = { path = "/cgi-bin/ticket/get", query = "type=agent_config" },
}

---------------------------------------------------------------------------
-- Clients
---------------------------------------------------------------------------

local common = {}     -- methods of both kinds of client
local app_methods = setmetatable({}, { __index = common })
local down_methods = setmetatable({}, { __index = common })

-- namespace objects created on first use: app.chain, app.linkedcorp
local NAMESPACES = {
    app = { chain = "wecom.api.chain", linkedcorp = "wecom.api.linkedcorp" },
    downstream = {},
}

-- methods written by the endpoint modules, loaded on first use:
-- name -> { module, function name }
local LAZY_METHODS = {
    app = {
        shared_corps = { "wecom.api.share", "shared_corps" },
        oauth_url = { "wecom.api.identity", "oauth_url" },
        user_by_code = { "wecom.api.identity", "user_by_code" },
        jscode2session = { "wecom.api.identity", "jscode2session" },
        -- a self-built or 代开发 app in its own corp (the corp's tickets)
        jsapi_config = { "wecom.api.jsapi", "config" },
        agent_config = { "wecom.api.jsapi", "agent_config" },
    },
    downstream = {
        transfer_session = { "wecom.api.identity", "transfer_session" },
        jsapi_config = { "wecom.api.jsapi", "config" },
        agent_config = { "wecom.api.jsapi", "agent_config" },
    },
}
-- the account-ID upgrade's conversions and the mass-call ticket: on every
-- corp client (an app, a 代开发 app, a downstream corp's, a suite's corp)
for _, name in ipairs { "userid_to_openuserid", "openuserid_to_userid", "to_service_external_userid",
    "from_service_external_userid", "get_new_external_userid", "unionid_to_external_userid",
    "external_userid_to_pending_id", "mass_call_ticket", "each_unionid", "convert_unionids" } do
    LAZY_METHODS.app[name] = { "wecom.api.idconvert", name }
    LAZY_METHODS.downstream[name] = { "wecom.api.idconvert", name }
end

-- make_index(methods, namespaces, lazy) -> an __index function: methods,
-- then lazy (loaded into methods on first use), then namespaces (created
-- into the object on first use)
local function make_index(methods, namespaces, lazy)
    return function(self, k)
        local m = methods[k]
        if m ~= nil then
            return m
        end
        local where = lazy[k]
        if where ~= nil then
            m = require(where[1])[where[2]]
            if type(m) ~= "function" then
                error("wecom: " .. where[1] .. "." .. where[2] .. " is not available", 2)
            end
            rawset(methods, k, m)
            return m
        end
        local module = namespaces[k]
        if module ~= nil then
            local obj = require(module).new(self)
            rawset(self, k, obj)
            return obj
        end
        return nil
    end
end

-- lazy_index(methods, lazy) -> __index for another module's objects
-- (wecom.suite, wecom.provider): their own methods, then lazy ones
function _M.lazy_index(methods, lazy)
    return make_index(methods, {}, lazy)
end

local app_mt = { __index = make_index(app_methods, NAMESPACES.app, LAZY_METHODS.app) }
local down_mt = { __index = make_index(down_methods, NAMESPACES.downstream, LAZY_METHODS.downstream) }

-- An authorized corp of a provider's app (wecom.suite): the app's surface
-- and JSAPI; a plain client: get, post and token (a suite or provider token).
local corp_methods = setmetatable({}, { __index = app_methods })
LAZY_METHODS.corp = {}
for _, kind in ipairs({ "app", "downstream" }) do
    for name, where in pairs(LAZY_METHODS[kind]) do
        if name ~= "transfer_session" then
            LAZY_METHODS.corp[name] = where
        end
    end
end
local corp_mt = { __index = make_index(corp_methods, NAMESPACES.app, LAZY_METHODS.corp) }
-- A third-party app's users are the suite's to ask about (getuserinfo3rd
-- with the suite token, appid = the suite_id): the corp forms, which a
-- 代开发 app's corp client uses, would send the corp token where WeCom
-- refuses it.
local third_corp_methods = setmetatable({}, { __index = corp_methods })
for _, name in ipairs { "oauth_url", "user_by_code", "jscode2session" } do
    third_corp_methods[name] = function()
        errors.usage("wecom:" .. name, "a third-party app's users are the suite's: suite:" .. name
            .. " (the corp forms are for self-built and 代开发 apps)")
    end
end
local third_corp_mt = { __index = make_index(third_corp_methods, NAMESPACES.app, LAZY_METHODS.corp) }
local plain_mt = { __index = common }
local function named(self)
    local name = self._name
    if type(name) == "function" then
        return name(self)
    end
    return name
end
corp_mt.__tostring, third_corp_mt.__tostring, plain_mt.__tostring = named, named, named

function app_mt.__tostring(self)
    return "wecom.app(corpid=" .. self.corpid .. ", agentid=" .. tostring(self.agentid) .. ")"
end

function down_mt.__tostring(self)
    return "wecom.downstream(corpid=" .. self.corpid .. ", agentid=" .. tostring(self.agentid)
        .. ", business_type=" .. tostring(self.business_type) .. ", upstream=" .. self.upstream.corpid .. ")"
end

local EXTEND_KIND = errors.kind("'app', 'downstream' or 'both'", function(v)
    return v == "app" or v == "downstream" or v == "both"
end)

-- extend(kind, methods): endpoint modules add methods ("app", "downstream"
-- or "both").  Core methods cannot be replaced.
function _M.extend(kind, methods)
    local where = "wecom.client.extend"
    errors.need(where, "kind", kind, EXTEND_KIND)
    errors.need(where, "methods", methods, errors.table)
    local targets = kind == "app" and { app_methods } or kind == "downstream" and { down_methods }
        or { app_methods, down_methods }
    for name, fn in pairs(methods) do
        if type(fn) ~= "function" then
            errors.usage(where, "methods." .. tostring(name) .. " must be a function (got "
                .. errors.describe(fn) .. ")")
        end
        if common[name] ~= nil or name == "downstream" then
            errors.usage(where, "'" .. tostring(name) .. "' is a core method")
        end
        for _, t in ipairs(targets) do
            rawset(t, name, fn)
        end
    end
end

---------------------------------------------------------------------------
-- Requests
---------------------------------------------------------------------------

-- The upstream token as cached now (only to scrub it from a downstream
-- client's errors: WeCom knows both tokens and might echo either).
local function upstream_token(app)
    local ok, value = pcall(app.store.get, app.store, app.token_key)
    return ok and value or nil
end

-- What classify hands text from the server or the transport through before
-- it goes into an error: the client's secret, the token this request
-- carried, the upstream's (a downstream client: WeCom knows both tokens and
-- might echo either).  One function for every request: req.client and
-- req.token say whose.
local function request_scrub(s, req)
    local self = req.client
    return self._scrub(s, req.token, self.upstream and upstream_token(self.upstream))
end

-- One request plus the retry policy.  query_string: encoded, without the
-- token; payload: the JSON text of a POST.  with_token: inject (and refresh)
-- the client's access token; without it (gettoken) the query goes as it is.
-- -> data, nil, http_status | nil, err
-- The common case (an answer at the first attempt) builds no more than the
-- URL and the transport's request table.
local function call(self, method, path, query_string, payload, opts, with_token)
    local token_param = self.token_param or "access_token"
    local timeout = opts and opts.timeout or self.timeout
    local headers
    if method == "POST" then
        headers = JSON_HEADERS
        payload = payload or "{}"
    end
    local base_url = self.base_url

    local req, state, tok
    while true do
        local target, tok_expires_at
        if not with_token then
            if query_string ~= "" then
                target = base_url .. path .. "?" .. query_string
            else
                target = base_url .. path
            end
        else
            tok, tok_expires_at = self:token()
            if not tok then
                return nil, tok_expires_at
            end
            if query_string ~= "" then
                target = base_url .. path .. "?" .. query_string .. "&" .. token_param .. "=" .. url.escape(tok)
            else
                target = base_url .. path .. "?" .. token_param .. "=" .. url.escape(tok)
            end
        end

        local res, herr = self.transport:request {
            method = method, url = target, headers = headers, body = payload, timeout = timeout,
        }
        local data, _, status = retry.success(res)
        if data then
            return data, nil, status
        end
        local err
        if req == nil then
            req = { method = method, path = path, client = self, scrub = request_scrub,
                read = method == "GET" or (opts ~= nil and opts.idempotent == true) }
        end
        req.token = tok
        data, err, status = retry.classify(req, res, herr)
        if data then
            return data, nil, status
        end

        state = state or retry.start(self.retries, with_token and token_param)
        local step = retry.next_step(err, state)
        if step == "refresh" then
            token.invalidate(self.store, self.token_key, tok, tok_expires_at)
        elseif step == "retry" then
            parallel.sleep(retry.delay(self.backoff, state.retries_used))
        else
            if state.retries_used > 0 then
                err.attempts = state.retries_used + 1
            end
            return nil, err
        end
    end
end

-- call with the client's token, without the http status -> data | nil, err
local function call_data(self, method, path, query_string, payload, opts)
    local data, err = call(self, method, path, query_string, payload, opts, true)
    if data == nil then
        return nil, err
    end
    return data
end

-- blanks and control characters would break the request line or smuggle
-- headers; a fragment would cut off the access_token
-- Paths are nearly always literals: the ones that passed are remembered
-- (up to PATHS_KEPT of them), so a call costs a table lookup instead of a
-- pattern search (which LuaJIT does not compile).
local PATHS_KEPT = 256
local good_paths, good_path_count = {}, 0
local PATH = errors.kind("a string starting with '/', without blanks, control characters or '#'",
    function(v)
        if good_paths[v] then
            return true
        end
        if type(v) == "string" and str_byte(v, 1) == 47 and not str_find(v, "[%s%c#]") then
            if good_path_count < PATHS_KEPT then
                good_path_count = good_path_count + 1
                good_paths[v] = true
            end
            return true
        end
        return false
    end)

local BODY = errors.kind("a table or a JSON string", function(v)
    return type(v) == "table" or type(v) == "string"
end)

-- Splits "path?a=b" so both forms work; the query table wins on conflicts
-- (and the last of a repeated key in the path).
local function split_path(path, query)
    local q = str_find(path, "?", 1, true)
    if not q then
        return path, query
    end
    local merged = url.parse_query(str_sub(path, q + 1))
    for k, v in pairs(merged) do
        if type(v) == "table" then
            merged[k] = v[#v]
        end
    end
    if query then
        for k, v in pairs(query) do
            merged[k] = v
        end
    end
    return str_sub(path, 1, q - 1), merged
end

-- The arguments of get and post checked (raising at their caller's line)
-- -> the bare path, the query string without the token
local function request_target(where, path, query, opts, token_param)
    errors.need(where, "path", path, PATH, 3)
    errors.opt(where, "query", query, errors.table, 3)
    options.request(where, opts, 3)
    path, query = split_path(path, query)
    token_param = token_param or "access_token"
    if query ~= nil and query[token_param] ~= nil then
        errors.usage(where, "query." .. token_param .. " is set by the client", 3)
    end
    -- raises for a value that cannot go into a URL, before any I/O
    return path, url.encode_query(query, where, 3)
end

-- client:get(path [, query [, opts]]) -> data | nil, err
function common.get(self, path, query, opts)
    local query_string
    path, query_string = request_target("wecom:get", path, query, opts, self.token_param)
    return call_data(self, "GET", path, query_string, nil, opts)
end

-- client:post(path, body [, query [, opts]]) -> data | nil, err
-- opts.idempotent = true marks a read, which may be retried after a timeout.
function common.post(self, path, body, query, opts)
    local query_string
    path, query_string = request_target("wecom:post", path, query, opts, self.token_param)
    errors.opt("wecom:post", "body", body, BODY)
    local payload = body
    if type(body) == "table" then
        local jerr
        payload, jerr = json.encode(body)
        if not payload then
            errors.usage("wecom:post", "body cannot be sent as JSON (" .. jerr .. ")")
        end
    end
    return call_data(self, "POST", path, query_string, payload, opts)
end

---------------------------------------------------------------------------
-- Tokens and tickets
---------------------------------------------------------------------------

local function lease(self)
    return token.flight_opts(self.timeout, self.retries, MAX_BACKOFF)
end

local TOKEN_OPTIONS = { force = errors.boolean }

-- client:token([{ force = true }]) -> access_token, expires_at | nil, err
-- force: drop the cached token and fetch one now (WeCom hands back the same
-- token while it is valid, so this mostly re-reads its expiry).
function common.token(self, opts)
    local force = false
    if opts ~= nil then
        errors.options("wecom:token", opts, TOKEN_OPTIONS)
        force = opts.force == true
    end
    local get = force and token.refresh or token.get
    local topts = self._token_opts
    if topts == nil then
        topts = lease(self)
        self._token_opts = topts
    end
    return get(self.store, self.token_key, self._fetch_token, topts)
end

local TICKET_KIND = errors.kind("'jsapi' or 'agent_config'", function(v) return TICKETS[v] ~= nil end)

-- client:ticket(kind) -> ticket, expires_at | nil, err   ("jsapi" | "agent_config")
function common.ticket(self, kind)
    local spec = TICKETS[errors.need("wecom:ticket", "kind", kind, TICKET_KIND)]
    local key = token.ticket_key(self.token_key, kind)
    return token.get(self.store, key, function()
        local data, err, status = call(self, "GET", spec.path, spec.query, nil, nil, true)
        if not data then
            return nil, err
        end
        return _M.credential_from(data, "ticket", "GET", spec.path, status)
    end, lease(self))
end

-- credential_from(data, field, method, path, http_status) -> value, expires_at | nil, err
_M.credential_from = token.credential_from

-- A failed token request is a "token" error, except for the kinds that say
-- something more useful (busy, rate limit, transport, decode).
local function as_token_error(err)
    if err.kind == "api" then
        err.kind = "token"
    end
    return err
end

-- A token endpoint's answer: one call (see call) -> data[field], expires_at
-- | nil, err (see as_token_error)
local function token_call(self, field, method, path, query_string, payload, opts, with_token)
    local data, err, status = call(self, method, path, query_string, payload, opts, with_token)
    if not data then
        return nil, as_token_error(err)
    end
    return _M.credential_from(data, field, method, path, status)
end

---------------------------------------------------------------------------
-- Constructors
---------------------------------------------------------------------------

-- what wecom.new takes besides the connection options of wecom.options
local APP_OPTIONS = {
    { "corpid", errors.string, required = true },
    { "secret", errors.string, required = true },
    { "agentid", errors.id },
    { "web_base_url", options.BASE_URL },   -- where app:oauth_url points (the emulator's pages)
}

-- new{ corpid, secret [, agentid, web_base_url, and the options of wecom.options] } -> app
function _M.new(opts)
    local o = options.resolve("wecom.new", opts, APP_OPTIONS)
    local self = setmetatable(options.settings_into({
        kind = "app",
        corpid = o.corpid,
        agentid = tointeger and o.agentid and tointeger(o.agentid) or o.agentid,
        web_base_url = o.web_base_url and o.web_base_url:gsub("/+$", "") or nil,
        transport = options.new_transport(o),
        token_key = token.app_key(o.corpid, o.agentid, o.secret, o.base_url),
    }, o), app_mt)

    -- the secret lives only in these closures, never in a field of the client
    local secret = o.secret
    self._scrub = scrub.new(secret)
    local query = url.encode_query { corpid = o.corpid, corpsecret = secret }
    self._fetch_token = function()
        return token_call(self, "access_token", "GET", GETTOKEN_PATH, query, nil, nil, false)
    end
    return self
end

local BUSINESS_TYPE = errors.kind("0 (企业互联) or 1 (上下游)", function(v) return v == 0 or v == 1 end)
local DOWNSTREAM_OPTIONS = { corpid = errors.string, agentid = errors.id, business_type = BUSINESS_TYPE }
local DOWNSTREAM_REQUIRED = { "corpid", "agentid" }

-- app:downstream{ corpid, agentid [, business_type = 0] } -> downstream client
function app_methods.downstream(self, opts)
    errors.options("wecom:downstream", opts, DOWNSTREAM_OPTIONS, DOWNSTREAM_REQUIRED)
    local business_type = opts.business_type or 0

    local down = setmetatable(options.settings_into({
        kind = "downstream",
        corpid = opts.corpid,
        agentid = tointeger and tointeger(opts.agentid) or opts.agentid,
        business_type = business_type,
        upstream = self,
        transport = self.transport,
        token_key = token.downstream_key(self.corpid, self.agentid, opts.corpid, opts.agentid, business_type,
            self.base_url),
        -- the upstream app's secret is scrubbed from the downstream's errors too
        _scrub = self._scrub,
    }, self), down_mt)

    local body = json.encode { corpid = opts.corpid, agentid = down.agentid, business_type = business_type }
    local read = { idempotent = true }
    down._fetch_token = function()
        -- the upstream client refreshes its own token if this call rejects it
        return token_call(self, "access_token", "POST", DOWNSTREAM_GETTOKEN_PATH, "", body, read, true)
    end
    return down
end

-- app:each_shared_corp(fn [, { business_type =, corpid =, limit =, concurrency = 16 }])
--   -> results (as wecom.parallel)
-- Calls fn(down, corp) for every corp the app is shared to, concurrently;
-- corp is the list_app_share_info record, down its downstream client.
function app_methods.each_shared_corp(self, fn, opts)
    local where = "wecom:each_shared_corp"
    errors.need(where, "fn", fn, errors.func)
    local share = require "wecom.api.share"
    local filter, concurrency = {}, nil
    if opts ~= nil then
        -- a bad option raises now, not after the whole share list was read
        errors.options(where, opts, share.EACH_OPTIONS)
        for k, v in pairs(opts) do
            if k == "concurrency" then
                concurrency = v
            else
                filter[k] = v
            end
        end
    end
    local business_type = filter.business_type or 0
    local tasks = {}
    for corp in self:shared_corps(filter) do
        tasks[#tasks + 1] = function()
            local down = self:downstream { corpid = corp.corpid, agentid = corp.agentid,
                business_type = business_type }
            return fn(down, corp)
        end
    end
    return parallel.run(tasks, { concurrency = concurrency })
end

---------------------------------------------------------------------------
-- Clients of other modules (wecom.suite, wecom.provider)
---------------------------------------------------------------------------

local BUILD_KIND = errors.kind("'corp' or 'plain'", function(v) return v == "corp" or v == "plain" end)

-- build(kind, fields) -> client
--   kind "corp": an authorized corp's client (the app's methods and
--   namespaces, jsapi_config and agent_config); "plain": get, post, token.
--   fields: name (what tostring shows, or a function(client) making it), corpid, agentid, token_key,
--     token_param (the query parameter of the token, "access_token" by
--     default), fetch_token(client) -> value, expires_at | nil, err,
--     scrub(text, ...) -> text (the wecom.scrub of the credentials behind
--     the token), transport, downstream (optional: fn(client, opts) ->
--     client, for a corp whose app reaches downstream corps another way),
--     third_party (true: a third-party app's corp, whose users are the
--     suite's to identify: no oauth_url, user_by_code, jscode2session),
--     and the settings of wecom.options (base_url, timeout, retries,
--     backoff, store).
function _M.build(kind, fields)
    errors.need("wecom.client.build", "kind", kind, BUILD_KIND)
    local fetch = fields.fetch_token
    local self = setmetatable(options.settings_into({
        kind = kind == "corp" and "corp" or fields.kind or "plain",
        corpid = fields.corpid,
        agentid = tointeger and fields.agentid and tointeger(fields.agentid) or fields.agentid,
        transport = fields.transport,
        token_key = fields.token_key,
        token_param = fields.token_param,
        _name = fields.name,
        _scrub = fields.scrub,
        _downstream = fields.downstream,
    }, fields), kind ~= "corp" and plain_mt or fields.third_party and third_corp_mt or corp_mt)
    self._fetch_token = function()
        return fetch(self)
    end
    return self
end

-- A corp whose app reaches downstream corps another way (a third-party
-- app: each downstream corp installs it) says so with fields.downstream.
function corp_methods.downstream(self, opts)
    if self._downstream then
        return self._downstream(self, opts)
    end
    return app_methods.downstream(self, opts)
end

-- The JSON text of a request's body table (nil: none) -> payload | nil, err
local function payload_of(body)
    if body == nil then
        return nil
    end
    local payload, jerr = json.encode(body)
    if not payload then
        return nil, errors.new("decode", "cannot encode the request (" .. tostring(jerr) .. ")")
    end
    return payload
end

-- credential(client, method, path, query, body, field [, with_token])
--   -> value, expires_at | nil, err
-- Calls a token endpoint through client's requests (its retries, its
-- scrubbing; with_token: the client's own token goes along, refreshed once
-- if rejected) and reads data[field] and expires_in; a failure is a "token"
-- error unless its kind says more.  query: a table; body: a table (POST).
function _M.credential(self, method, path, query, body, field, with_token)
    local payload, perr = payload_of(body)
    if perr then
        return nil, perr
    end
    return token_call(self, field, method, path, url.encode_query(query), payload, method == "POST" and READ or nil,
        with_token)
end

-- request(client, method, path, query, body, opts) -> data | nil, err
-- get/post without their argument checks, for modules that checked their
-- own (query: a table or nil; body: a table or nil).
function _M.request(self, method, path, query, body, opts)
    local payload, perr = payload_of(body)
    if perr then
        return nil, perr
    end
    return call_data(self, method, path, url.encode_query(query), payload, opts)
end

-- plain_front(mt): the token, get and post methods of another module's
-- object (wecom.suite, wecom.provider) whose requests go through the plain
-- client in its _api field
function _M.plain_front(mt)
    function mt.token(self, opts)
        return self._api:token(opts)
    end
    function mt.get(self, path, query, opts)
        return self._api:get(path, query, opts)
    end
    function mt.post(self, path, body, query, opts)
        return self._api:post(path, body, query, opts)
    end
end

function _M.is_client(v)
    local mt = getmetatable(v)
    return mt == app_mt or mt == down_mt or mt == corp_mt or mt == third_corp_mt or mt == plain_mt
end

return _M
