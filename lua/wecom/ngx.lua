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
--   403                a bad signature or receive id (codes -40001, -40005)
--   400                anything else wrong with the request (other callback codes,
--                      GET without echostr)
--   405                other methods
--   500                the event handler raised, or its reply could not be
--                      encrypted; WeCom retries the push
-- Rejections are logged at warn level, handler failures at error level;
-- neither log lines nor response bodies carry keys, tokens or plaintext.

local error = error
local io_open = io.open
local pairs = pairs
local pcall = pcall
local str_find = string.find
local tostring = tostring
local type = type

-- handlers set ngx.status and ngx.header
-- luacheck: globals ngx
local ngx = ngx

local _M = {}

local MAX_BODY = 1024 * 1024

local FORBIDDEN_CODES = { [-40001] = true, [-40005] = true }

local OPTIONS = { callback = true, router = true }

local function respond(status, body, content_type)
    ngx.status = status
    ngx.header["Content-Type"] = content_type or "text/plain; charset=utf-8"
    ngx.header["Content-Length"] = #body
    if status == 405 then
        ngx.header["Allow"] = "GET, POST"
    end
    ngx.print(body)
    return ngx.exit(ngx.HTTP_OK)
end

local function reject(err)
    local status = 400
    if type(err) == "table" and FORBIDDEN_CODES[err.code] then
        status = 403
    end
    ngx.log(ngx.WARN, "wecom callback: rejected ", ngx.req.get_method(), " (", status, "): ", tostring(err))
    return respond(status, status == 403 and "forbidden" or "bad request")
end

-- The request body, also when nginx buffered it to a file (bodies larger
-- than client_body_buffer_size); at most MAX_BODY + 1 bytes are read, which
-- is enough for cb:decrypt to refuse the body.
local function read_body()
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if body then
        return body
    end
    local path = ngx.req.get_body_file()
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

local function check_options(opts)
    if type(opts) ~= "table" then
        error("wecom.ngx.callback_handler: options must be a table (got " .. type(opts) .. ")", 3)
    end
    for k in pairs(opts) do
        if not OPTIONS[k] then
            error("wecom.ngx.callback_handler: unknown option '" .. tostring(k) .. "'", 3)
        end
    end
    local cb = opts.callback
    if type(cb) ~= "table" or type(cb.verify_url) ~= "function" or type(cb.decrypt) ~= "function"
        or type(cb.reply) ~= "function" then
        error("wecom.ngx.callback_handler: option 'callback' must be a wecom.callback object"
            .. " (wecom.callback.new{ ... })", 3)
    end
    local router = opts.router
    if router ~= nil and (type(router) ~= "table" or type(router.dispatch) ~= "function") then
        error("wecom.ngx.callback_handler: option 'router' must be a wecom.callback router"
            .. " (wecom.callback.router())", 3)
    end
    return cb, router
end

-- callback_handler{ callback = cb [, router = router] } -> function for content_by_lua*
-- callback_handler{ suite = suite [, router = router] }: a suite's URL (wecom.ngx.suite)
function _M.callback_handler(opts)
    if type(opts) == "table" and opts.suite ~= nil then
        return require("wecom.ngx.suite").handler(opts, _M.callback_handler)
    end
    local cb, router = check_options(opts)
    local parse_query = require("wecom.callback").parse_query

    return function()
        local method = ngx.req.get_method()
        -- the raw query: ngx.req.get_uri_args() would turn the "+" of the
        -- base64 echostr into a space
        local query = parse_query(ngx.var.args or "")

        if method == "GET" then
            if query.echostr == nil then
                ngx.log(ngx.WARN, "wecom callback: rejected GET (400): no echostr in the query")
                return respond(400, "bad request")
            end
            local echo, err = cb:verify_url(query)
            if not echo then
                return reject(err)
            end
            return respond(200, echo)
        end

        if method ~= "POST" then
            return respond(405, "method not allowed")
        end

        local body = read_body()
        local event, err = cb:decrypt(query, body)
        if not event then
            return reject(err)
        end

        local reply
        if router then
            local ok, res = pcall(router.dispatch, router, event)
            if not ok then
                ngx.log(ngx.ERR, "wecom callback: handler for event ", tostring(event.type),
                    " failed: ", tostring(res))
                return respond(500, "internal error")
            end
            reply = res
        end

        if type(reply) == "string" and reply ~= "" then
            local json = json_envelope(body) and cb.reply_json ~= nil
            local sealed, rerr
            if json then
                sealed, rerr = cb:reply_json(reply)
            else
                sealed, rerr = cb:reply(reply)
            end
            if not sealed then
                ngx.log(ngx.ERR, "wecom callback: reply to event ", tostring(event.type),
                    " could not be encrypted: ", tostring(rerr))
                return respond(500, "internal error")
            end
            return respond(200, sealed, json and "application/json; charset=utf-8"
                or "application/xml; charset=utf-8")
        end
        if event.InfoType ~= nil or event.infotype ~= nil then
            return respond(200, "success")
        end
        return respond(200, "")
    end
end

return _M
