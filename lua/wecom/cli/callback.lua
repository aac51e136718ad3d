-- bin/wecom's callback-decrypt: a captured callback request, verified and
-- decrypted for debugging.

local pairs = pairs
local pcall = pcall
local tostring = tostring
local sort = table.sort
local type = type

local json = require "wecom.json"
local url = require "wecom.url"

local _M = {}

-- split_capture(text) -> query string, body
--   A raw HTTP request (request line, headers, blank line, body), or the
--   request URL / query string on the first line and the body after it.
function _M.split_capture(text)
    text = text:gsub("^\239\187\191", "")
    local target, rest = text:match("^%u+ (%S+) HTTP/[%d.]+\r?\n(.*)$")
    local body
    if target then
        local a, b = rest:find("\r?\n\r?\n")
        if rest:find("^\r?\n") then
            body = rest:gsub("^\r?\n", "", 1)
        elseif a then
            body = rest:sub(b + 1)
        else
            body = ""
        end
    else
        target, body = text:match("^([^\r\n]*)\r?\n(.*)$")
        if not target then
            target, body = text, ""
        end
    end
    local query = target:match("%?(.*)$") or target
    query = query:gsub("#.*$", "")
    return query, body
end

local callback_decrypt = {
    name = "callback-decrypt",
    summary = "verify and decrypt a captured callback request (for debugging)",
    usage = "wecom callback-decrypt FILE [--query QUERY] [--token TOKEN] [--aes-key KEY] [--receive-id ID]",
    args = { "FILE" },
    options = {
        query = { value = "QUERY" },
        token = { value = "TOKEN" },
        ["aes-key"] = { value = "KEY" },
        ["receive-id"] = { value = "ID" },
    },
    help = [[
Verifies the signature of a callback request WeCom sent and decrypts it, as
your callback endpoint would: a POST's event, or a GET URL check's echostr.

FILE (`-`: stdin) holds the captured request: either the raw HTTP request
(request line, headers, blank line, body), or the request URL or query string
(msg_signature=...&timestamp=...&nonce=...) on the first line and the body
after it; or only the body, with --query QUERY.

The app's callback settings: WECOM_CALLBACK_TOKEN and WECOM_CALLBACK_AES_KEY
(or callback_token / callback_aes_key in the config file, or --token and
--aes-key, which other users of the host can see in ps). The receive id checked
is --receive-id, WECOM_RECEIVE_ID, else WECOM_CORPID; none: not checked.
The timestamp's age is not checked (a capture is old).

Prints the event: every field of the XML (json: one object; table: field and
value); for a URL check the echostr's plaintext. Exit status 18 (callback)
when the signature, the decryption or the receive id fails.]],
}

function callback_decrypt.run(ctx, opts, positional)
    local settings = ctx:settings()
    local token = opts.token or settings.callback_token
    local aes_key = opts["aes-key"] or settings.callback_aes_key
    ctx.out:secret(token)
    ctx.out:secret(aes_key)
    if not token or not aes_key then
        ctx:config_error("the callback token and EncodingAESKey are missing: set WECOM_CALLBACK_TOKEN and"
            .. " WECOM_CALLBACK_AES_KEY (or callback_token / callback_aes_key in the config file)")
    end
    local text = ctx:read_input(positional[1])
    local query, body
    if opts.query then
        query, body = opts.query:match("%?(.*)$") or opts.query, text
    else
        query, body = _M.split_capture(text)
    end
    local receive_id = opts["receive-id"] or settings.receive_id or settings.corpid or false
    local ok, cb = pcall(require("wecom.callback").new, { token = token, aes_key = aes_key,
                                                          receive_id = receive_id })
    if not ok then
        ctx:config_error((tostring(cb):gsub("^[^:]*:%d+: ", "")))
    end
    local q = url.parse_query(query)
    if type(q.msg_signature) ~= "string" then
        ctx:input_error("no msg_signature in the query (" .. (query ~= "" and "got '" .. query:sub(1, 80) .. "'"
            or "empty") .. ")")
    end
    if q.echostr ~= nil and not body:find("%S") then
        local echo = ctx:call(cb:verify_url(q))
        if ctx.out.format == "json" then
            ctx.out:write(json.encode({ echostr = echo }), "\n")
        else
            ctx.out:write(echo, "\n")
        end
        return
    end
    local event = ctx:call(cb:decrypt(q, body))
    -- the plaintext field is made on first read: read it, so pairs sees it
    local plain = { xml = event.xml, json = event.json }
    for k, v in pairs(event) do
        plain[k] = v
    end
    plain.xml, plain.json = event.xml, event.json   -- made when first read (wecom.callback)
    if ctx.out.format == "json" then
        ctx.out:write(json.encode(plain) or "{}", "\n")
        return
    end
    local keys = {}
    for k in pairs(plain) do
        if k ~= "xml" then
            keys[#keys + 1] = k
        end
    end
    sort(keys)
    keys[#keys + 1] = "xml"
    ctx.out:object(plain, keys)
end

_M.commands = { callback_decrypt }

return _M
