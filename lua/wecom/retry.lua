-- wecom.retry: the retry policy of every client request.
--
-- Pure functions, no I/O: the client does the sending, the sleeping and the
-- token refresh; this module says what an answer means and what to do next.
--
--   classify(req, res, terr) -> data, nil, http_status | nil, err
--       req:  { method =, path =, read = bool, scrub = fn(text) -> text }
--             read: a GET, or a POST marked idempotent; scrub removes
--             credentials from server or transport text before it goes into
--             an error (errors.new then cuts it to one bounded line).
--       res:  { status, headers, body } from the transport, or nil
--       terr: { kind, message, curl_code } from the transport, or nil
--   start(retries, sent_token) -> state
--       a fresh request's state: no retry spent, no refresh made yet;
--       sent_token: the request carries the client's token (so a token
--       error can be cured by a refresh): true or "access_token" for an
--       access_token, "suite_access_token" or "provider_access_token" for
--       a service provider's tokens (each has its own rejection codes).
--   next_step(err, state) -> "refresh" | "retry" | nil
--       "refresh": drop the rejected token, get a new one, resend (once);
--       "retry": wait delay(...) and resend (up to `retries` times);
--       nil: give up with err.  The state records what was spent.
--   delay(backoff, n [, random01]) -> seconds to wait before retry n (1-based):
--       backoff doubled for each retry, capped at MAX_BACKOFF, half of it
--       random (random01 in [0, 1), default a fresh random number)
--
-- The policy (DESIGN.md "Errors"):
--   * 40001/40014/42001, and 41001 ("access_token missing") for a request
--     that did carry our token: kind "token", refresh once and resend;
--     for a suite or provider token the same with 40082/42009 (and 41022,
--     "suite_access_token missing"); 40085 (no valid suite_ticket) is kind
--     "token" too, but no refresh cures it;
--   * -1 (system busy): kind "busy", retried;
--   * 45009/45033: kind "rate_limit", never retried;
--   * failures before anything was sent (resolve, connect) are retried for
--     every request; a timeout, a broken connection or a 5xx only for reads
--     (a write may have been applied), except 502/503/504 (the gateway never
--     reached WeCom);
--   * a response over max_body is not retried: it would be as big again;
--   * anything but exactly one JSON object is a "decode" error, not retried;
--   * any other errcode is kind "api", not retried.

local math_min = math.min
local pairs = pairs
local str_byte = string.byte
local str_find = string.find
local tonumber = tonumber
local type = type

local core = require "wecom.core"
local errors = require "wecom.errors"
local json = require "wecom.json"

local _M = {}

-- longest wait between two attempts, seconds
_M.MAX_BACKOFF = 8
local MAX_BACKOFF = _M.MAX_BACKOFF

-- errcodes meaning "the token this request carried is no good", by the
-- query parameter that carried it: refresh once and resend.  "... missing"
-- (41001, 41022) is cured by a refresh only when we did send one (an empty
-- or mangled token from a store).
local REFRESH_ERRCODES = {
    access_token = { [40001] = true, [40014] = true, [42001] = true, [41001] = true },
    suite_access_token = { [40082] = true, [42009] = true, [41022] = true },
    provider_access_token = { [40082] = true, [42009] = true, [41001] = true },
}
-- kind "token": any of those, and 40085 (the suite_ticket is missing,
-- expired or another suite's: only WeCom's next push cures it)
local TOKEN_ERRCODES = { [40085] = true }
for _, codes in pairs(REFRESH_ERRCODES) do
    for code in pairs(codes) do
        TOKEN_ERRCODES[code] = true
    end
end
local RATE_LIMIT_ERRCODES = { [45009] = true, [45033] = true }
local BUSY_ERRCODE = -1
-- libcurl codes for failures before anything was sent (resolve, connect):
-- safe to retry for writes as well
local CONNECT_PHASE = { [5] = true, [6] = true, [7] = true }
-- a response over the size limit: libcurl's FILESIZE_EXCEEDED when the
-- length is announced, WRITE_ERROR when the core's body callback stops it
local TOO_LARGE = { [23] = true, [63] = true }
-- gateway answers: the request never reached the application
local GATEWAY_STATUS = { [502] = true, [503] = true, [504] = true }

local function no_scrub(s)
    return s
end

-- What the transport said went wrong (nothing, or nothing usable, came back).
local function transport_error(req, terr)
    local fields = { method = req.method, path = req.path }
    local kind = terr and terr.kind
    if kind ~= "timeout" and kind ~= "tls" then
        kind = "transport"
    end
    local code = terr and terr.curl_code
    fields.curl_code = code
    if kind == "timeout" then
        fields.retryable = req.read == true
    elseif kind == "transport" then
        fields.retryable = not TOO_LARGE[code] and (req.read == true or CONNECT_PHASE[code] == true)
    end
    local message = terr and terr.message
    if type(message) ~= "string" then
        message = "request failed"
    end
    return nil, errors.new(kind, (req.scrub or no_scrub)(message), fields)
end

local function looks_like_html(body)
    return str_find(body, "^%s*<") ~= nil
end

function _M.classify(req, res, terr)
    if res == nil then
        return transport_error(req, terr)
    end

    local status = res.status
    local body = res.body
    -- the common case first, without building an error
    local data
    if status == 200 and body ~= nil and body ~= "" then
        data = json.decode_object(body)
        if data then
            local errcode = data.errcode
            if errcode == 0 or errcode == nil then
                return data, nil, status
            end
        end
    end

    local fields = { method = req.method, path = req.path, http_status = status }
    if status >= 500 then
        fields.retryable = req.read == true or GATEWAY_STATUS[status] == true
        return nil, errors.new("transport", "server error (HTTP " .. status .. ")", fields)
    end

    if body == nil or body == "" then
        return nil, errors.new("decode", "empty response body", fields)
    end
    if data == nil then
        data = json.decode_object(body)
    end
    if data == nil then
        local what = looks_like_html(body) and "an HTML page" or "not one JSON object"
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
    if type(errmsg) == "string" then
        errmsg = (req.scrub or no_scrub)(errmsg)
    else
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

function _M.start(retries, sent_token)
    local refresh = REFRESH_ERRCODES[sent_token == true and "access_token" or sent_token]
    return { retries = retries, retries_used = 0, refreshed = false, refresh = refresh }
end

function _M.next_step(err, state)
    local refresh = state.refresh
    if err.kind == "token" and refresh and not state.refreshed and refresh[err.errcode] then
        state.refreshed = true
        return "refresh"
    end
    if err.retryable and state.retries_used < state.retries then
        state.retries_used = state.retries_used + 1
        return "retry"
    end
    return nil
end

local function random01()
    local b1, b2, b3 = str_byte(core.random_bytes(3), 1, 3)
    return (b1 * 65536 + b2 * 256 + b3) / 16777216
end

function _M.delay(backoff, n, r)
    local delay = math_min(backoff * 2 ^ (n - 1), MAX_BACKOFF)
    -- "equal jitter": half fixed, half random, so retries spread out but
    -- never come back immediately
    return delay / 2 + delay / 2 * (r or random01())
end

return _M
