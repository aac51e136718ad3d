-- wecom.client: the app client and the downstream client.
--
-- Both share one implementation; they differ only in where their access
-- token comes from (gettoken with the app's secret, or corpgroup/corp/gettoken
-- with the upstream app's token).  Every request:
--   * gets a token from the token store (wecom.token), sends it as the
--     access_token query parameter;
--   * on 40001/40014/42001 drops that token from the store only if it is still
--     the cached one, fetches a new one and resends, once;
--   * on -1 (busy), connection failures and 5xx retries with exponential
--     backoff and jitter, up to `retries` times; a timeout or a broken
--     connection is retried only for reads (GET, or a POST marked
--     `idempotent`), never for a write that may have been applied;
--   * 45009/45033 are rate limits: kind "rate_limit", not retried.
-- Errors are wecom.errors objects; neither the secret nor a token ever gets
-- into one (paths carry no query string, and the token is scrubbed from
-- whatever the server or libcurl said).

local error = error
local getmetatable = getmetatable
local io_open = io.open
local ipairs = ipairs
local math_floor = math.floor
local math_min = math.min
local math_type = math.type  -- nil on LuaJIT
local next = next
local pairs = pairs
local pcall = pcall
local rawset = rawset
local require = require
local select = select
local setmetatable = setmetatable
local sort = table.sort
local str_byte = string.byte
local str_format = string.format
local str_find = string.find
local str_gsub = string.gsub
local concat = table.concat
local tonumber = tonumber
local tostring = tostring
local type = type

local cjson = require("cjson").new()           -- private config: never touch the user's
local cjson_safe = require("cjson.safe").new()
local core = require "wecom.core"
local errors = require "wecom.errors"
local parallel = require "wecom.parallel"
local token = require "wecom.token"

local _M = {}

local DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
local DEFAULT_TIMEOUT = 5
local DEFAULT_RETRIES = 2
local DEFAULT_BACKOFF = 0.5     -- seconds before the first retry, doubled each time
local MAX_BACKOFF = 8

local GETTOKEN_PATH = "/cgi-bin/gettoken"
local JSON_HEADERS = { ["Content-Type"] = "application/json; charset=utf-8" }  -- read-only
local DOWNSTREAM_GETTOKEN_PATH = "/cgi-bin/corpgroup/corp/gettoken"
local TICKETS = {
    jsapi = { path = "/cgi-bin/get_jsapi_ticket" },
    agent_config = { path = "/cgi-bin/ticket/get", query = { type = "agent_config" } },
}

-- errcodes meaning "this access_token is no good": refresh once and resend
local REFRESH_ERRCODES = { [40001] = true, [40014] = true, [42001] = true }
local TOKEN_ERRCODES = { [40001] = true, [40014] = true, [42001] = true, [41001] = true }
local RATE_LIMIT_ERRCODES = { [45009] = true, [45033] = true }
local BUSY_ERRCODE = -1
-- libcurl codes for failures before anything was sent (resolve, connect):
-- safe to retry for writes as well
local CONNECT_PHASE = { [5] = true, [6] = true, [7] = true }
-- gateway answers: the request never reached the application
local GATEWAY_STATUS = { [502] = true, [503] = true, [504] = true }

---------------------------------------------------------------------------
-- JSON
---------------------------------------------------------------------------

-- Empty Lua tables encode as objects ({}).  A list that may be empty is
-- marked with wecom.json_array(t) so it encodes as [].  OpenResty's cjson
-- has array_mt for that; Debian's lua-cjson has not, so there the marked
-- empty lists are replaced by a per-process placeholder string and swapped
-- for [] after encoding.
local ARRAY_MT = cjson.array_mt or { __name = "wecom.json_array" }
local native_array_mt = cjson.array_mt ~= nil
-- letters and digits only, so it is safe in a gsub pattern
local EMPTY_PLACEHOLDER = "wecomEmptyArray" .. core.sha1_hex(core.random_bytes(16))
local EMPTY_QUOTED = '"' .. EMPTY_PLACEHOLDER .. '"'

_M.null = cjson.null

function _M.json_array(t)
    if t == nil then
        t = {}
    elseif type(t) ~= "table" then
        error("wecom.json_array: argument must be a table (got " .. type(t) .. ")", 2)
    end
    return setmetatable(t, ARRAY_MT)
end

local function has_empty_array(t, depth)
    if depth > 64 then
        return false
    end
    if getmetatable(t) == ARRAY_MT and next(t) == nil then
        return true
    end
    for _, v in pairs(t) do
        if type(v) == "table" and has_empty_array(v, depth + 1) then
            return true
        end
    end
    return false
end

local function replace_empty_arrays(t, depth)
    if getmetatable(t) == ARRAY_MT and next(t) == nil then
        return EMPTY_PLACEHOLDER
    end
    local copy = {}
    for k, v in pairs(t) do
        if type(v) == "table" and depth < 64 then
            v = replace_empty_arrays(v, depth + 1)
        end
        copy[k] = v
    end
    return copy
end

-- json_encode(value) -> string; raises when value cannot be JSON (a bug)
function _M.json_encode(value)
    if not native_array_mt and type(value) == "table" and has_empty_array(value, 0) then
        local s, err = cjson_safe.encode(replace_empty_arrays(value, 0))
        if not s then
            error("wecom: body cannot be encoded as JSON: " .. tostring(err), 3)
        end
        return (str_gsub(s, EMPTY_QUOTED, "[]"))
    end
    local s, err = cjson_safe.encode(value)
    if not s then
        error("wecom: body cannot be encoded as JSON: " .. tostring(err), 3)
    end
    return s
end

-- Debian's cjson decodes every number as a float on Lua 5.3+, so ids and
-- codes would print as "1000002.0"; integral values become integers.
local tointeger = math.tointeger  -- nil on LuaJIT, where nothing is needed

local function integers(t, depth)
    for k, v in pairs(t) do
        local tv = type(v)
        if tv == "number" then
            local i = tointeger(v)
            if i then
                t[k] = i
            end
        elseif tv == "table" and depth < 64 then
            integers(v, depth + 1)
        end
    end
end

-- json_decode(s) -> value | nil, err
function _M.json_decode(s)
    local value, err = cjson_safe.decode(s)
    if tointeger and type(value) == "table" then
        integers(value, 0)
    end
    return value, err
end

---------------------------------------------------------------------------
-- Query strings
---------------------------------------------------------------------------

local function escape_char(c)
    return str_format("%%%02X", str_byte(c))
end

local function url_escape(s)
    return (str_gsub(s, "[^%w%-%._~]", escape_char))
end
_M.url_escape = url_escape

local function query_value(k, v)
    local tv = type(v)
    if tv == "string" then
        return v
    elseif tv == "number" then
        if v ~= v or v == 1 / 0 or v == -1 / 0 then
            error("wecom: query." .. tostring(k) .. " must be a finite number (got " .. tostring(v) .. ")", 4)
        end
        if (math_type and math_type(v) == "integer")
            or (v == math_floor(v) and v > -2^53 and v < 2^53) then
            return str_format("%d", v)
        end
        return tostring(v)
    elseif tv == "boolean" then
        return v and "true" or "false"
    end
    error("wecom: query." .. tostring(k) .. " must be a string, number or boolean (got " .. tv .. ")", 4)
end

-- encode_query(query) -> "a=1&b=2" with keys sorted (stable URLs)
function _M.encode_query(query)
    if query == nil then
        return ""
    end
    local keys = {}
    for k in pairs(query) do
        if type(k) ~= "string" then
            error("wecom: query keys must be strings (got " .. type(k) .. ")", 3)
        end
        keys[#keys + 1] = k
    end
    sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do
        parts[i] = url_escape(k) .. "=" .. url_escape(query_value(k, query[k]))
    end
    return concat(parts, "&")
end

---------------------------------------------------------------------------
-- Response classification and the retry decision (pure functions)
---------------------------------------------------------------------------

local function looks_like_html(body)
    return str_find(body, "^%s*<") ~= nil
end

-- classify(method, path, res, transport_err, is_read) -> data, nil, http_status | nil, err
--   res: { status, headers, body } from the transport (or nil)
--   transport_err: { kind, message, curl_code } (or nil)
function _M.classify(method, path, res, terr, is_read)
    local fields
    if res == nil then
        fields = { method = method, path = path }
        local kind = terr and terr.kind
        if kind ~= "timeout" and kind ~= "tls" then
            kind = "transport"
        end
        fields.curl_code = terr and terr.curl_code
        if kind == "timeout" then
            fields.retryable = is_read == true
        elseif kind == "transport" then
            fields.retryable = is_read == true or CONNECT_PHASE[fields.curl_code] == true
        end
        return nil, errors.new(kind, terr and terr.message or "request failed", fields)
    end

    local status = res.status
    local body = res.body
    -- the common case first, without building an error
    local data
    if status == 200 and body ~= nil and body ~= "" then
        data = _M.json_decode(body)
        if type(data) == "table" and data[1] == nil then
            local errcode = data.errcode
            if errcode == 0 or errcode == nil then
                return data, nil, status
            end
        end
    end

    fields = { method = method, path = path, http_status = status }
    if status >= 500 then
        fields.retryable = is_read == true or GATEWAY_STATUS[status] == true
        return nil, errors.new("transport", "server error (HTTP " .. status .. ")", fields)
    end

    if body == nil or body == "" then
        return nil, errors.new("decode", "empty response body", fields)
    end
    if data == nil then
        data = _M.json_decode(body)
    end
    if type(data) ~= "table" or data[1] ~= nil then
        local what = looks_like_html(body) and "an HTML page" or "not a JSON object"
        return nil, errors.new("decode", "response is " .. what .. " (" .. #body .. " bytes)", fields)
    end

    local errcode = data.errcode
    if errcode ~= nil then
        errcode = tonumber(errcode)
        if errcode == nil then
            return nil, errors.new("decode", "errcode is not a number", fields)
        end
    end
    if errcode == nil or errcode == 0 then
        if status < 200 or status >= 300 then
            return nil, errors.new("transport", "unexpected HTTP status " .. status, fields)
        end
        return data, nil, status
    end

    fields.errcode = errcode
    local errmsg = data.errmsg
    if type(errmsg) ~= "string" then
        errmsg = "errcode " .. errcode
    end
    local kind = "api"
    if errcode == BUSY_ERRCODE then
        kind = "busy"
        fields.retryable = true
    elseif RATE_LIMIT_ERRCODES[errcode] then
        kind = "rate_limit"
    elseif TOKEN_ERRCODES[errcode] then
        kind = "token"
    end
    return nil, errors.new(kind, errmsg, fields)
end

-- next_step(err, state) -> "refresh" | "retry" | nil
--   state: { refreshed = bool, retries_used = n, retries = max }
function _M.next_step(err, state)
    if err.kind == "token" and REFRESH_ERRCODES[err.errcode] and not state.refreshed then
        return "refresh"
    end
    if err.retryable and state.retries_used < state.retries then
        return "retry"
    end
    return nil
end

-- backoff_delay(base, n, random01) -> seconds before retry number n (1-based)
function _M.backoff_delay(base, n, random01)
    local delay = math_min(base * 2 ^ (n - 1), MAX_BACKOFF)
    -- "equal jitter": half fixed, half random, so retries spread out but
    -- never come back immediately
    return delay / 2 + delay / 2 * random01
end

local function random01()
    local b1, b2, b3 = str_byte(core.random_bytes(3), 1, 3)
    return (b1 * 65536 + b2 * 256 + b3) / 16777216
end

-- Removes every occurrence of a credential from a message.
local function scrub(s, secret)
    if type(s) ~= "string" or type(secret) ~= "string" or secret == "" then
        return s
    end
    local pos, parts = 1, nil
    while true do
        local i, j = str_find(s, secret, pos, true)
        if not i then
            break
        end
        parts = parts or {}
        parts[#parts + 1] = s:sub(pos, i - 1)
        parts[#parts + 1] = "***"
        pos = j + 1
    end
    if not parts then
        return s
    end
    parts[#parts + 1] = s:sub(pos)
    return concat(parts)
end
_M.scrub = scrub

-- Whatever the server or libcurl echoes: a URL's credentials, a JSON
-- access_token, whoever's they are (an older token, another client's).
local CREDENTIAL_PATTERNS = {
    "([%?&]access_token=)[^&%s\"'<>]+",
    "([%?&]corpsecret=)[^&%s\"'<>]+",
    "([%?&]ticket=)[^&%s\"'<>]+",
    "(\"access_token\"%s*:%s*\")[^\"]*",
    "(\"corpsecret\"%s*:%s*\")[^\"]*",
}

-- sanitize(msg, credential...) -> msg without the credentials (raw or
-- URL-escaped) and without anything that looks like one
local function sanitize(s, ...)
    if type(s) ~= "string" then
        return s
    end
    for i = 1, select("#", ...) do
        local credential = select(i, ...)
        if type(credential) == "string" and credential ~= "" then
            s = scrub(s, credential)
            local escaped = url_escape(credential)
            if escaped ~= credential then
                s = scrub(s, escaped)
            end
        end
    end
    for _, pattern in ipairs(CREDENTIAL_PATTERNS) do
        s = str_gsub(s, pattern, "%1***")
    end
    return s
end
_M.sanitize = sanitize

---------------------------------------------------------------------------
-- Options
---------------------------------------------------------------------------

-- level 4: fail <- check_option <- new/downstream <- the caller
local function fail(where, msg)
    error(where .. ": " .. msg, 4)
end

local MAX_RETRIES = 10        -- with the 8 s backoff cap, about a minute of retrying
local MAX_SECONDS = 86400     -- libcurl's timeouts are kept below this
local MAX_BACKOFF_BASE = 60

local function is_integer(v, min, max)
    return type(v) == "number" and v == math_floor(v) and v >= min and v <= max
end

local function in_range(v, min_exclusive, min, max)
    return type(v) == "number" and v == v and v <= max
        and (min_exclusive and v > min or not min_exclusive and v >= min)
end

-- option kinds: what the message says, and the test
local OPTION_KINDS = {
    string = { "a non-empty string", function(v) return type(v) == "string" and v ~= "" end },
    id = { "an integer >= 0", function(v) return is_integer(v, 0, 2^53 - 1) end },
    retries = { "an integer from 0 to " .. MAX_RETRIES, function(v) return is_integer(v, 0, MAX_RETRIES) end },
    seconds = { "a number of seconds in (0, " .. MAX_SECONDS .. "]",
        function(v) return in_range(v, true, 0, MAX_SECONDS) end },
    backoff = { "a number of seconds from 0 to " .. MAX_BACKOFF_BASE,
        function(v) return in_range(v, false, 0, MAX_BACKOFF_BASE) end },
    store = { "a store (an object with get, set, delete, lock and unlock methods)", function(v)
        if type(v) ~= "table" and type(v) ~= "userdata" then
            return false
        end
        for _, m in ipairs({ "get", "set", "delete", "lock", "unlock" }) do
            if type(v[m]) ~= "function" then
                return false
            end
        end
        return true
    end },
}

local function describe_value(v)
    if type(v) == "string" then
        return v == "" and "empty string" or "string"
    elseif type(v) == "number" then
        return "number " .. tostring(v)
    end
    return type(v)
end

local function check_option(where, opts, name, want, required)
    local v = opts[name]
    local kind = OPTION_KINDS[want]
    if v == nil then
        if required then
            fail(where, "option '" .. name .. "' is required (" .. kind[1] .. ")")
        end
        return
    end
    if not kind[2](v) then
        fail(where, "option '" .. name .. "' must be " .. kind[1] .. " (got " .. describe_value(v) .. ")")
    end
end

local APP_OPTIONS = {
    corpid = "string", secret = "string", agentid = "id", base_url = "string",
    ca_file = "string", timeout = "seconds", connect_timeout = "seconds",
    retries = "retries", backoff = "backoff", store = "store",
    proxy = "string", noproxy = "string", user_agent = "string",
}

---------------------------------------------------------------------------
-- Clients
---------------------------------------------------------------------------

local common = {}     -- methods of both kinds of client
local app_methods = setmetatable({}, { __index = common })
local down_methods = setmetatable({}, { __index = common })

-- namespace objects created on first use: app.chain, app.linkedcorp
local NAMESPACES = {
    app = { chain = "wecom.chain", linkedcorp = "wecom.linkedcorp" },
    downstream = {},
}

-- methods written by the endpoint modules, loaded on first use:
-- name -> { module, function name }
local LAZY_METHODS = {
    app = {
        shared_corps = { "wecom.pager", "shared_corps" },
        oauth_url = { "wecom.identity", "oauth_url" },
        user_by_code = { "wecom.identity", "user_by_code" },
        jscode2session = { "wecom.identity", "jscode2session" },
    },
    downstream = {
        transfer_session = { "wecom.identity", "transfer_session" },
        jsapi_config = { "wecom.jsapi", "config" },
        agent_config = { "wecom.jsapi", "agent_config" },
    },
}

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

local app_mt = { __index = make_index(app_methods, NAMESPACES.app, LAZY_METHODS.app) }
local down_mt = { __index = make_index(down_methods, NAMESPACES.downstream, LAZY_METHODS.downstream) }

function app_mt.__tostring(self)
    return "wecom.app(corpid=" .. self.corpid .. ", agentid=" .. tostring(self.agentid) .. ")"
end

function down_mt.__tostring(self)
    return "wecom.downstream(corpid=" .. self.corpid .. ", agentid=" .. tostring(self.agentid)
        .. ", business_type=" .. tostring(self.business_type) .. ", upstream=" .. self.upstream.corpid .. ")"
end

-- extend(kind, methods): endpoint modules add methods ("app", "downstream"
-- or "both").  Core methods cannot be replaced.
function _M.extend(kind, methods)
    local targets = kind == "app" and { app_methods } or kind == "downstream" and { down_methods }
        or kind == "both" and { app_methods, down_methods } or nil
    if not targets then
        error("wecom.client.extend: kind must be 'app', 'downstream' or 'both'", 2)
    end
    for name, fn in pairs(methods) do
        if type(fn) ~= "function" then
            error("wecom.client.extend: " .. tostring(name) .. " is not a function", 2)
        end
        if common[name] ~= nil or name == "downstream" then
            error("wecom.client.extend: '" .. tostring(name) .. "' is a core method", 2)
        end
        for _, t in ipairs(targets) do
            rawset(t, name, fn)
        end
    end
end

-- The upstream token as cached now (only to scrub it from a downstream
-- client's errors: WeCom knows both tokens and might echo either).
local function upstream_token(app)
    local ok, value = pcall(app.store.get, app.store, app.token_key)
    return ok and value or nil
end

-- One HTTP exchange plus the retry policy.  with_token: inject (and refresh)
-- the client's access token; without it (gettoken), query is sent as is.
-- -> data, http_status | nil, err
local function call(self, method, path, query, body, opts, with_token)
    local is_read = method == "GET" or (opts ~= nil and opts.idempotent == true)
    local timeout = opts and opts.timeout or self.timeout
    local headers, payload
    if method == "POST" then
        headers = JSON_HEADERS
        if type(body) == "string" then
            payload = body
        elseif body == nil then
            payload = "{}"
        else
            payload = _M.json_encode(body)
        end
    end
    local query_string = _M.encode_query(query)
    local base = self.base_url .. path .. "?"
    if query_string ~= "" then
        base = base .. query_string .. "&"
    end

    local state = { refreshed = false, retries_used = 0, retries = self.retries }
    while true do
        local url, tok, tok_expires_at
        if with_token then
            tok, tok_expires_at = self:token()
            if not tok then
                return nil, tok_expires_at
            end
            url = base .. "access_token=" .. url_escape(tok)
        else
            url = self.base_url .. path .. (query_string ~= "" and "?" .. query_string or "")
        end

        local res, herr = self.transport:request {
            method = method, url = url, headers = headers, body = payload, timeout = timeout,
        }
        local data, err, status = _M.classify(method, path, res, herr, is_read)
        if data then
            return data, status
        end
        err.errmsg = sanitize(err.errmsg, tok, self.upstream and upstream_token(self.upstream))

        local step = _M.next_step(err, state)
        if step == "refresh" and with_token then
            state.refreshed = true
            token.invalidate(self.store, self.token_key, tok, tok_expires_at)
        elseif step == "retry" then
            state.retries_used = state.retries_used + 1
            parallel.sleep(_M.backoff_delay(self.backoff, state.retries_used, random01()))
        else
            if state.retries_used > 0 then
                err.attempts = state.retries_used + 1
            end
            return nil, err
        end
    end
end

local function check_path(where, path)
    if type(path) ~= "string" or str_byte(path, 1) ~= 47 then  -- "/"
        error(where .. ": path must be a string starting with '/' (got "
            .. (type(path) == "string" and "'" .. errors.bare_path(path) .. "'" or type(path)) .. ")", 3)
    end
    -- blanks and control characters would break the request line or smuggle
    -- headers; a fragment would cut off the access_token
    if str_find(path, "[%s%c#]") then
        error(where .. ": path must not contain blanks, control characters or '#'", 3)
    end
end

local function check_query(where, query)
    if query ~= nil then
        if type(query) ~= "table" then
            error(where .. ": query must be a table (got " .. type(query) .. ")", 3)
        end
        if query.access_token ~= nil then
            error(where .. ": query.access_token is set by the client", 3)
        end
    end
end

local REQUEST_OPTIONS = { idempotent = "boolean", timeout = "number" }
local SECONDS = OPTION_KINDS.seconds

local function check_request_opts(where, opts)
    if opts == nil then
        return
    end
    if type(opts) ~= "table" then
        error(where .. ": opts must be a table (got " .. type(opts) .. ")", 3)
    end
    for k, v in pairs(opts) do
        local want = REQUEST_OPTIONS[k]
        if not want then
            error(where .. ": unknown option '" .. tostring(k) .. "'", 3)
        end
        if type(v) ~= want then
            error(where .. ": option '" .. k .. "' must be a " .. want .. " (got " .. type(v) .. ")", 3)
        end
        if k == "timeout" and not SECONDS[2](v) then
            error(where .. ": option 'timeout' must be " .. SECONDS[1] .. " (got " .. describe_value(v) .. ")", 3)
        end
    end
end

-- Splits "path?a=b" so both forms work; the query table wins on conflicts.
local function split_path(path, query)
    local q = str_find(path, "?", 1, true)
    if not q then
        return path, query
    end
    local merged = {}
    for pair in path:sub(q + 1):gmatch("[^&]+") do
        local k, v = pair:match("^([^=]*)=?(.*)$")
        if k ~= "" then
            merged[k] = v
        end
    end
    if query then
        for k, v in pairs(query) do
            merged[k] = v
        end
    end
    return path:sub(1, q - 1), merged
end

-- client:get(path [, query [, opts]]) -> data | nil, err
function common.get(self, path, query, opts)
    check_path("wecom:get", path)
    check_query("wecom:get", query)
    check_request_opts("wecom:get", opts)
    path, query = split_path(path, query)
    local data, err = call(self, "GET", path, query, nil, opts, true)
    if data == nil then
        return nil, err
    end
    return data
end

-- client:post(path, body [, query [, opts]]) -> data | nil, err
-- opts.idempotent = true marks a read, which may be retried after a timeout.
function common.post(self, path, body, query, opts)
    check_path("wecom:post", path)
    if body ~= nil and type(body) ~= "table" and type(body) ~= "string" then
        error("wecom:post: body must be a table or a JSON string (got " .. type(body) .. ")", 2)
    end
    check_query("wecom:post", query)
    check_request_opts("wecom:post", opts)
    path, query = split_path(path, query)
    local data, err = call(self, "POST", path, query, body, opts, true)
    if data == nil then
        return nil, err
    end
    return data
end

local function lease(self)
    return token.flight_opts(self.timeout, self.retries, MAX_BACKOFF)
end

-- client:token([{ force = true }]) -> access_token, expires_at | nil, err
-- force: drop the cached token and fetch one now (WeCom hands back the same
-- token while it is valid, so this mostly re-reads its expiry).
function common.token(self, opts)
    local force = false
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("wecom:token: opts must be a table (got " .. type(opts) .. ")", 2)
        end
        for k, v in pairs(opts) do
            if k ~= "force" then
                error("wecom:token: unknown option '" .. tostring(k) .. "'", 2)
            end
            if type(v) ~= "boolean" then
                error("wecom:token: option 'force' must be a boolean (got " .. type(v) .. ")", 2)
            end
            force = v
        end
    end
    local get = force and token.refresh or token.get
    return get(self.store, self.token_key, self._fetch_token, lease(self))
end

-- client:ticket(kind) -> ticket, expires_at | nil, err   ("jsapi" | "agent_config")
function common.ticket(self, kind)
    local spec = TICKETS[kind]
    if not spec then
        error("wecom:ticket: kind must be 'jsapi' or 'agent_config' (got " .. tostring(kind) .. ")", 2)
    end
    local key = token.ticket_key(self.token_key, kind)
    return token.get(self.store, key, function()
        local data, err = call(self, "GET", spec.path, spec.query, nil, nil, true)
        if not data then
            return nil, err
        end
        return _M.credential_from(data, "ticket", "GET", spec.path, err)
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

local transport_module  -- loaded on first client: wecom.transport picks curl or ngx

local function new_transport(opts)
    transport_module = transport_module or require "wecom.transport"
    return transport_module.new {
        ca_file = opts.ca_file, timeout = opts.timeout or DEFAULT_TIMEOUT,
        connect_timeout = opts.connect_timeout, proxy = opts.proxy, noproxy = opts.noproxy,
        user_agent = opts.user_agent or ("wecom-lua/" .. require("wecom.version")),
    }
end

-- new{ corpid, secret [, agentid, base_url, ca_file, timeout, connect_timeout,
--      retries, backoff, store, proxy, noproxy, user_agent] } -> app
function _M.new(opts)
    local where = "wecom.new"
    if type(opts) ~= "table" then
        error(where .. ": options must be a table (got " .. type(opts) .. ")", 2)
    end
    for k in pairs(opts) do
        if APP_OPTIONS[k] == nil then
            error(where .. ": unknown option '" .. tostring(k) .. "'", 2)
        end
    end
    check_option(where, opts, "corpid", "string", true)
    check_option(where, opts, "secret", "string", true)
    for name, want in pairs(APP_OPTIONS) do
        if name ~= "corpid" and name ~= "secret" then
            check_option(where, opts, name, want, false)
        end
    end
    local base_url = opts.base_url or DEFAULT_BASE_URL
    -- scheme, host[:port], an optional path; no query, fragment, userinfo
    -- (a password there would end up in logs) or blanks
    if not str_find(base_url, "^https://[^/?#@%s%c]") or str_find(base_url, "[?#@%s%c]") then
        error(where .. ": option 'base_url' must be an https:// URL without query, fragment,"
            .. " user info or blanks", 2)
    end
    base_url = str_gsub(base_url, "/+$", "")
    transport_module = transport_module or require "wecom.transport"
    if opts.ca_file ~= nil and transport_module.name == "curl" then
        -- a wrong path would otherwise surface as a "tls" error on the first
        -- call (inside nginx ca_file is ignored: lua_ssl_trusted_certificate)
        local f, ferr = io_open(opts.ca_file, "rb")
        if not f then
            error(where .. ": option 'ca_file' cannot be read: " .. tostring(ferr), 2)
        end
        f:close()
    end

    local store = opts.store
    if store == nil then
        store = require("wecom.store.memory").new()
    end

    local self = setmetatable({
        kind = "app",
        corpid = opts.corpid,
        agentid = tointeger and opts.agentid and tointeger(opts.agentid) or opts.agentid,
        base_url = base_url,
        timeout = opts.timeout or DEFAULT_TIMEOUT,
        retries = opts.retries or DEFAULT_RETRIES,
        backoff = opts.backoff or DEFAULT_BACKOFF,
        store = store,
        transport = new_transport(opts),
        token_key = token.app_key(opts.corpid, opts.agentid, opts.secret, base_url),
    }, app_mt)

    -- the secret lives only in this closure, never in a field of the client
    local secret = opts.secret
    local query = { corpid = opts.corpid, corpsecret = secret }
    self._fetch_token = function()
        local data, err = call(self, "GET", GETTOKEN_PATH, query, nil, nil, false)
        if not data then
            err.errmsg = sanitize(err.errmsg, secret)
            return nil, as_token_error(err)
        end
        return _M.credential_from(data, "access_token", "GET", GETTOKEN_PATH, err)
    end
    return self
end

local DOWNSTREAM_OPTIONS = { corpid = "string", agentid = "id", business_type = "id" }

-- app:downstream{ corpid, agentid [, business_type = 0] } -> downstream client
function app_methods.downstream(self, opts)
    local where = "wecom:downstream"
    if type(opts) ~= "table" then
        error(where .. ": options must be a table (got " .. type(opts) .. ")", 2)
    end
    for k in pairs(opts) do
        if DOWNSTREAM_OPTIONS[k] == nil then
            error(where .. ": unknown option '" .. tostring(k) .. "'", 2)
        end
    end
    check_option(where, opts, "corpid", "string", true)
    check_option(where, opts, "agentid", "id", true)
    check_option(where, opts, "business_type", "id", false)
    local business_type = opts.business_type or 0
    if business_type ~= 0 and business_type ~= 1 then
        error(where .. ": option 'business_type' must be 0 or 1 (got " .. tostring(business_type) .. ")", 2)
    end

    local down = setmetatable({
        kind = "downstream",
        corpid = opts.corpid,
        agentid = tointeger and tointeger(opts.agentid) or opts.agentid,
        business_type = business_type,
        upstream = self,
        base_url = self.base_url,
        timeout = self.timeout,
        retries = self.retries,
        backoff = self.backoff,
        store = self.store,
        transport = self.transport,
        token_key = token.downstream_key(self.corpid, self.agentid, opts.corpid, opts.agentid, business_type,
            self.base_url),
    }, down_mt)

    local body = { corpid = opts.corpid, agentid = down.agentid, business_type = business_type }
    local read = { idempotent = true }
    down._fetch_token = function()
        -- the upstream client refreshes its own token if this call rejects it
        local data, err = call(self, "POST", DOWNSTREAM_GETTOKEN_PATH, nil, body, read, true)
        if not data then
            return nil, as_token_error(err)
        end
        return _M.credential_from(data, "access_token", "POST", DOWNSTREAM_GETTOKEN_PATH, err)
    end
    return down
end

-- app:each_shared_corp(fn [, { business_type =, corpid =, limit =, concurrency = 16 }])
--   -> results (as wecom.parallel)
-- Calls fn(down, corp) for every corp the app is shared to, concurrently;
-- corp is the list_app_share_info record, down its downstream client.
function app_methods.each_shared_corp(self, fn, opts)
    if type(fn) ~= "function" then
        error("wecom:each_shared_corp: fn must be a function (got " .. type(fn) .. ")", 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error("wecom:each_shared_corp: opts must be a table (got " .. type(opts) .. ")", 2)
    end
    local filter, concurrency = {}, nil
    for k, v in pairs(opts or {}) do
        if k == "concurrency" then
            concurrency = v
        else
            filter[k] = v
        end
    end
    -- a bad concurrency should raise now, not after the whole share list was read
    parallel.check_concurrency(concurrency, "wecom:each_shared_corp", 2)
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

_M.app_methods = app_methods
_M.downstream_methods = down_methods

function _M.is_client(v)
    local mt = getmetatable(v)
    return mt == app_mt or mt == down_mt
end

return _M
