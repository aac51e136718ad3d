-- wecom.ngx: WeCom callbacks served by nginx (OpenResty, or nginx +
-- lua-nginx-module).
--
--   location = /wecom/callback {
--       content_by_lua_block {
--           require("my.site").callback_handler()   -- built once per worker:
--       }                                          -- wecom.ngx.callback_handler{ callback = cb, router = r }
--   }
--
-- The handler answers:
--   GET with echostr   the URL check: 200 and the decrypted echo, nothing else
--                      (no newline), as WeCom requires
--   POST               verify, decrypt, router:dispatch(event); 200 with
--                        * cb:reply(s), when the handler returned a non-empty
--                          string s (a passive reply, encrypted); cb:reply_json(s)
--                          when the request came in the JSON variant,
--                        * "success" for third-party command events (InfoType),
--                          which WeCom requires,
--                        * an empty body otherwise (WeCom needs only the 200)
--                      With dedupe on the callback object (wecom.callback.new{
--                      dedupe = store }), a resend of a message already
--                      handled gets that same answer without running the
--                      router again.
--   503                with dedupe, a resend of a message whose first delivery
--                      is still running: WeCom resends it again later, when it
--                      gets the first one's answer (or, if that one failed, is
--                      handled); a claim whose worker died stands for
--                      dedupe_lease (10 s) only
--   403                a bad signature or receive id (codes -40001, -40005)
--   400                anything else wrong with the request (other callback codes,
--                      GET without echostr)
--   405                other methods
--   500                the event handler raised, or its reply could not be
--                      encrypted; WeCom retries the push
-- Rejections are logged at warn level, handler failures at error level;
-- neither log lines nor response bodies carry keys, tokens or plaintext.
-- Every log line is one line: what a peer or a handler put in it has its
-- control characters escaped and is cut at 512 bytes.

local getmetatable = getmetatable
local io_open = io.open
local pcall = pcall
local str_find = string.find
local tostring = tostring
local type = type

local env = require "wecom.env"
local errors = require "wecom.errors"
local url = require "wecom.url"

local line = errors.line
local parse_query = url.parse_query
local log = env.log

local _M = {}

local MAX_BODY = 1024 * 1024

local FORBIDDEN_CODES = { [-40001] = true, [-40005] = true }

local XML_TYPE = "application/xml; charset=utf-8"
local JSON_TYPE = "application/json; charset=utf-8"

-- text(v) -> tostring(v) as one bounded piece of a log line (errors.line:
-- control characters escaped, cut at 512 bytes with a marker)
local function text(v)
    return line(tostring(v))
end

-- The answer for a request, once its status and body are known.  An empty
-- 200 needs no headers: nginx sends its own, as for any empty reply.
local function respond(ngx, status, body, content_type)
    if status == 200 and body == "" then
        return ngx.exit(200)
    end
    ngx.status = status
    local header = ngx.header
    header["Content-Type"] = content_type or "text/plain; charset=utf-8"
    header["Content-Length"] = #body
    if status == 405 then
        header["Allow"] = "GET, POST"
    end
    ngx.print(body)
    return ngx.exit(200)
end

local function reject(ngx, method, err)
    local status = 400
    if type(err) == "table" and FORBIDDEN_CODES[err.code] then
        status = 403
    end
    log("warn", "wecom callback: rejected ", method, " (", status, "): ", text(err))
    return respond(ngx, status, status == 403 and "forbidden" or "bad request")
end

-- The request body, also when nginx buffered it to a file (bodies larger
-- than client_body_buffer_size); at most MAX_BODY + 1 bytes are read, which
-- is enough for cb:decrypt to refuse the body.
local function read_body(ngx)
    local req = ngx.req
    req.read_body()
    local body = req.get_body_data()
    if body then
        return body
    end
    local path = req.get_body_file()
    if not path then
        return ""
    end
    local f = io_open(path, "rb")
    if not f then
        return ""
    end
    body = f:read(MAX_BODY + 1) or ""
    f:close()
    return body
end

-- The JSON variant (reference 8) wants its reply in JSON too.  The
-- envelope's first byte tells (after blanks and a UTF-8 BOM, as
-- wecom.callback skips them).
local function json_envelope(body)
    return str_find(body, "^[ \t\r\n]*\239\187\191[ \t\r\n]*{") ~= nil
        or str_find(body, "^[ \t\r\n]*{") ~= nil
end

local function callable(v)
    if type(v) == "function" then
        return true
    end
    local m = getmetatable(v)
    return type(m) == "table" and type(m.__call) == "function"
end

local OPTIONS = {
    callback = errors.kind("a wecom.callback object (wecom.callback.new{ ... })", function(v)
        return type(v) == "table" and callable(v.verify_url) and callable(v.decrypt)
            and callable(v.reply)
    end),
    router = errors.kind("a wecom.callback router (wecom.callback.router())", function(v)
        return type(v) == "table" and callable(v.dispatch)
    end),
}
local REQUIRED = { "callback" }

-- callback_handler{ callback = cb [, router = router] } -> function for content_by_lua*
-- callback_handler{ suite = suite [, router = router] }: a suite's URL (wecom.ngx.suite)
function _M.callback_handler(opts)
    if type(opts) == "table" and opts.suite ~= nil then
        -- a suite's URL (wecom.ngx.suite): served by this handler, behind the callback interface
        return require("wecom.ngx.suite").handler(opts, _M.callback_handler)
    end
    errors.options("wecom.ngx.callback_handler", opts, OPTIONS, REQUIRED)
    local ngx = env.ngx
    if not ngx then
        errors.usage("wecom.ngx.callback_handler", "needs nginx with lua-nginx-module (call it inside nginx)")
    end
    local cb, router = opts.callback, opts.router
    -- what every request uses, looked up once
    local decrypt, reply_xml, reply_json = cb.decrypt, cb.reply, cb.reply_json
    local dispatch = router and router.dispatch
    local dedupe = cb.dedupe ~= nil and cb.claim ~= nil
    local var, get_method = ngx.var, ngx.req.get_method

    -- 200 with the reply already sealed, or the plain acknowledgement
    local function acknowledge(event, body, sealed)
        if sealed then
            return respond(ngx, 200, sealed, json_envelope(body) and JSON_TYPE or XML_TYPE)
        end
        if event.InfoType ~= nil or event.infotype ~= nil then
            return respond(ngx, 200, "success")
        end
        return ngx.exit(200)
    end

    -- a claimed event that failed: WeCom's resend must run the router again
    local function forget(event)
        local released, err = cb:release(event)
        if not released then
            log("warn", "wecom callback: dedupe store failed: ", text(err))
        end
    end

    local function verify_url()
        local q = parse_query(var.args or "")
        if q.echostr == nil then
            log("warn", "wecom callback: rejected GET (400): no echostr in the query")
            return respond(ngx, 400, "bad request")
        end
        local echo, err = cb:verify_url(q)
        if not echo then
            return reject(ngx, "GET", err)
        end
        return respond(ngx, 200, echo)
    end

    return function()
        local method = get_method()
        if method ~= "POST" then
            if method == "GET" then
                return verify_url()
            end
            return respond(ngx, 405, "method not allowed")
        end

        local body = read_body(ngx)
        -- the raw query string, which cb:decrypt reads as the GET check's
        -- parse_query does ('+' stays '+'), in C for the usual request:
        -- no $arg_ lookups, no query table
        local event, err = decrypt(cb, var.args or "", body)
        if not event then
            return reject(ngx, "POST", err)
        end

        local claimed = false
        if dedupe then
            local first, sealed, pending = cb:claim(event)
            if first == false and pending then
                log("info", "wecom callback: a resend of event ", text(event.type),
                    " while its first delivery is still running: not acknowledged (503)")
                return respond(ngx, 503, "busy")
            elseif first == false then
                log("info", "wecom callback: a resend of event ", text(event.type),
                    " answered without running the router")
                return acknowledge(event, body, sealed)
            elseif first == nil then
                log("warn", "wecom callback: dedupe store failed, handling the event anyway: ", text(sealed))
            else
                claimed = true
            end
        end

        local reply
        if dispatch then
            local ok, res = pcall(dispatch, router, event)
            if not ok then
                log("err", "wecom callback: handler for event ", text(event.type), " failed: ", text(res))
                if claimed then
                    forget(event)
                end
                return respond(ngx, 500, "internal error")
            end
            reply = res
        end

        local sealed
        if type(reply) == "string" and reply ~= "" then
            local serr
            if reply_json and json_envelope(body) then
                sealed, serr = reply_json(cb, reply)
            else
                sealed, serr = reply_xml(cb, reply)
            end
            if not sealed then
                log("err", "wecom callback: reply to event ", text(event.type),
                    " could not be encrypted: ", text(serr))
                if claimed then
                    forget(event)
                end
                return respond(ngx, 500, "internal error")
            end
        end
        if claimed then
            local settled, serr = cb:settle(event, sealed)
            if not settled then
                log("warn", "wecom callback: dedupe store failed: ", text(serr))
            end
        end
        return acknowledge(event, body, sealed)
    end
end

return _M
