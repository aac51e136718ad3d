-- POST /__emulator/push: encrypt an event with an upstream app's callback
-- token and EncodingAESKey (receiveid = the upstream corpid) and deliver it
-- the way WeCom does, or run the GET URL check with an encrypted echostr.
--
-- Body: { url, agentid?, event? | info_type? | xml? | verify?, to_user?,
--         from_user?, fields?, echostr?, receive_id?, suite_id?, corpid?,
--         attempts? (1..3, default 3), timeout_ms? (default 5000) }
-- fields: element name -> a string or number, an object (nested elements)
-- or a list (the element repeated).
-- With suite_id the suite's callback settings seal it instead (reference
-- §3.1): info_type builds the InfoType form of its 指令回调 URL (receive id
-- and ToUserName the suite_id, AuthCorpId = corpid when given; xml is sent
-- the same way); event the Event form of its 数据回调 URL or a 代开发 app's
-- URL, for corpid, a corp that installed the suite (receive id and
-- ToUserName that corpid, AgentID the app's agentid there); verify the URL
-- check, with the provider's corpid as receive id.
-- Answer: { status, body, attempts, timestamp, nonce, msg_signature[, echostr] }
--
-- Events the emulator sends on its own (batch_job_result when an import job
-- finishes) go the same way to the app's callback URL: the fixture's
-- callback.url, or what POST /__emulator/callback_url set. Each delivery is
-- logged for GET /__emulator/pushes.

local json = require "wecom.json"
local escape = require("wecom.url").escape
local store = require "wecom.emulator.store"
local fixture = require "wecom.emulator.fixture"
local http1 = require "wecom.transport.http1"

local ngx = ngx
local type = type
local pairs = pairs
local pcall = pcall
local tonumber = tonumber
local tostring = tostring
local concat = table.concat
local sort = table.sort
local floor = math.floor

local _M = {}

local MAX_RESPONSE = 1024 * 1024

local core_module
local function core()
    if core_module == nil then
        local ok, mod = pcall(require, "wecom.core")
        core_module = ok and type(mod) == "table" and mod.crypter and mod or false
    end
    return core_module
end

local function cdata(s)
    return "<![CDATA[" .. tostring(s):gsub("]]>", "]]]]><![CDATA[>") .. "]]>"
end

-- fields_xml(parts, fields): appends the elements of `fields` (sorted by
-- name): numbers as they are, strings in CDATA, objects nested, lists as
-- the element repeated.
local function fields_xml(parts, fields)
    local names = {}
    for name in pairs(fields or {}) do
        names[#names + 1] = name
    end
    sort(names)
    local function element(name, v)
        if type(v) == "table" and v[1] ~= nil then
            for _, item in ipairs(v) do
                element(name, item)
            end
            return
        end
        parts[#parts + 1] = "<" .. name .. ">"
        if type(v) == "table" then
            fields_xml(parts, v)
        else
            parts[#parts + 1] = type(v) == "number" and tostring(v) or cdata(v)
        end
        parts[#parts + 1] = "</" .. name .. ">"
    end
    for _, name in ipairs(names) do
        element(name, fields[name])
    end
end

-- The plaintext event WeCom would send (reference §9).
local function event_xml(body, corpid, agentid, now)
    local parts = {
        "<xml><ToUserName>", cdata(body.to_user or corpid), "</ToUserName>",
        "<FromUserName>", cdata(body.from_user or "sys"), "</FromUserName>",
        "<CreateTime>", tostring(floor(now)), "</CreateTime>",
        "<MsgType>", cdata("event"), "</MsgType>",
        "<Event>", cdata(body.event), "</Event>",
        "<AgentID>", tostring(agentid), "</AgentID>",
    }
    fields_xml(parts, body.fields)
    parts[#parts + 1] = "</xml>"
    return concat(parts)
end

-- The InfoType form of a suite's 指令回调 URL (reference §3.2, §3.7).
local function info_xml(body, suite_id, now)
    local parts = { "<xml><SuiteId>", cdata(suite_id), "</SuiteId>" }
    if body.corpid then
        parts[#parts + 1] = "<AuthCorpId>" .. cdata(body.corpid) .. "</AuthCorpId>"
    end
    parts[#parts + 1] = "<InfoType>" .. cdata(body.info_type) .. "</InfoType>"
    parts[#parts + 1] = "<TimeStamp>" .. tostring(floor(now)) .. "</TimeStamp>"
    fields_xml(parts, body.fields)
    parts[#parts + 1] = "</xml>"
    return concat(parts)
end

-- fields: names of XML elements, values a string, a number, an object or a
-- list of them, at most 8 deep -> nil | what is wrong
local function check_fields(v, depth)
    if depth > 8 then
        return "fields nest too deep"
    end
    for name, value in pairs(v) do
        if type(name) ~= "string" or not name:match("^[%a_][%w_%-%.]*$") then
            return "fields: " .. tostring(name) .. " is not an XML element name"
        end
        local items = type(value) == "table" and value[1] ~= nil and value or { value }
        for _, item in ipairs(items) do
            local t = type(item)
            if t == "table" then
                if item[1] ~= nil then
                    return "fields." .. name .. ": a list inside a list"
                end
                local problem = check_fields(item, depth + 1)
                if problem then
                    return problem
                end
            elseif t ~= "string" and t ~= "number" then
                return "fields." .. name .. " must be a string, a number, an object or a list"
            end
        end
    end
end

local function parse_url(url)
    if type(url) ~= "string" then
        return nil
    end
    local scheme, host, port, path = url:match("^(https?)://([^/:?#]+):?(%d*)([^#]*)")
    if not scheme then
        return nil
    end
    port = tonumber(port) or (scheme == "https" and 443 or 80)
    if path == "" then
        path = "/"
    elseif path:sub(1, 1) == "?" then
        path = "/" .. path
    end
    return { scheme = scheme, host = host, port = port, path = path }
end

-- http(method, target, path, body, timeout_ms) -> status, body | nil, err:
-- one request on a fresh connection, the whole exchange within timeout_ms;
-- the response is read by wecom.transport.http1 (bounded in bytes and time)
local function http(method, target, path, body, timeout_ms)
    ngx.update_time()
    local deadline = ngx.now() + timeout_ms / 1000
    local where = target.host .. ":" .. target.port
    local sock = ngx.socket.tcp()
    sock:settimeout(timeout_ms)
    local ok, err = sock:connect(target.host, target.port)
    if not ok then
        return nil, "connect: " .. tostring(err)
    end
    if target.scheme == "https" then
        sock:settimeout(http1.ms(deadline - ngx.now()))
        ok, err = sock:sslhandshake(nil, target.host, true)
        if not ok then
            sock:close()
            return nil, "tls: " .. tostring(err)
        end
    end
    local host = target.host
    if (target.scheme == "https" and target.port ~= 443) or (target.scheme == "http" and target.port ~= 80) then
        host = host .. ":" .. target.port
    end
    local req = {
        method, " ", path, " HTTP/1.1\r\nHost: ", host,
        "\r\nUser-Agent: wecom-emulator\r\nAccept: */*\r\nConnection: close\r\n",
    }
    if body then
        req[#req + 1] = "Content-Type: text/xml\r\nContent-Length: " .. #body .. "\r\n"
    end
    req[#req + 1] = "\r\n"
    req[#req + 1] = body or ""
    sock:settimeout(http1.ms(deadline - ngx.now()))
    ok, err = sock:send(concat(req))
    if not ok then
        sock:close()
        return nil, "send: " .. tostring(err)
    end
    local res, rerr = http1.read_response(sock, {
        where = where, deadline = deadline, now = ngx.now, max_body = MAX_RESPONSE,
        head = method == "HEAD",
    })
    sock:close()
    if not res then
        return nil, rerr.kind .. ": " .. rerr.message
    end
    return res.status, res.body
end

local function numeric_nonce()
    return store.random_string(10, "0123456789")
end

-- seal(callback, whose, receive_id, plaintext) -> crypter, encrypted |
-- nil, err: plaintext encrypted with a callback's Token and EncodingAESKey
-- (`whose` names them in an error).  The crypter then signs each delivery;
-- the caller closes it.
local function seal(callback, whose, receive_id, plaintext)
    local c = core()
    if not c then
        return nil, "pushes need wecom.core built for LuaJIT (start the emulator with --core-cpath"
            .. " or WECOM_EMULATOR_CPATH)"
    end
    local ok, crypter = pcall(c.crypter, callback.token, callback.aes_key)
    if not ok then
        return nil, whose .. " callback aes_key: " .. tostring(crypter)
    end
    local encrypted, emsg = crypter:encrypt(plaintext, receive_id)
    if not encrypted then
        crypter:close()
        return nil, "encrypt failed: " .. tostring(emsg)
    end
    return crypter, encrypted
end

-- signed(crypter, encrypted) -> timestamp, nonce, msg_signature: signed
-- afresh, as WeCom signs every delivery and retry
local function signed(crypter, encrypted)
    local timestamp = tostring(floor(store.now()))
    local nonce = numeric_nonce()
    return timestamp, nonce, crypter:signature(timestamp, nonce, encrypted)
end

-- envelope(to_user_name, encrypted, agentid) -> the body of the POST
local function envelope(to_user_name, encrypted, agentid)
    return "<xml><ToUserName>" .. cdata(to_user_name) .. "</ToUserName><Encrypt>" .. cdata(encrypted)
        .. "</Encrypt><AgentID>" .. cdata(agentid) .. "</AgentID></xml>"
end

-- deliver(F, app, target, plaintext, o) -> answer | nil, err. Encrypts
-- plaintext with the app's callback settings and sends it (o.verify: as the
-- GET URL check's echostr), retrying up to o.attempts times on a non-200
-- answer or a transport error. o.receive_id and o.to_user_name (the
-- envelope's) default to the upstream corpid.
local function deliver(F, app, target, plaintext, o)
    local crypter, encrypted = seal(app.callback, "app " .. app.agentid, o.receive_id or F.upstream.corpid,
        plaintext)
    if not crypter then
        return nil, encrypted
    end

    local answer = { attempts = 0 }
    local last_err
    for attempt = 1, o.attempts or 3 do
        local timestamp, nonce, signature = signed(crypter, encrypted)
        local sep = target.path:find("?", 1, true) and "&" or "?"
        local query = "msg_signature=" .. signature .. "&timestamp=" .. timestamp .. "&nonce=" .. nonce
        local status, rbody
        if o.verify then
            status, rbody = http("GET", target, target.path .. sep .. query .. "&echostr=" .. escape(encrypted),
                nil, o.timeout_ms or 5000)
        else
            status, rbody = http("POST", target, target.path .. sep .. query,
                envelope(o.to_user_name or F.upstream.corpid, encrypted, app.agentid), o.timeout_ms or 5000)
        end
        answer.attempts = attempt
        answer.timestamp, answer.nonce, answer.msg_signature = timestamp, nonce, signature
        if status then
            answer.status, answer.body = status, rbody
            if status == 200 then
                break
            end
        else
            last_err = rbody
        end
    end
    crypter:close()
    if not answer.status then
        answer.error = last_err
    end
    answer.ok = answer.status == 200
    return answer
end

-- suite_app(F, body, bad) -> the "app" deliver() seals with, the sealing
-- ({ corpid, receive_id, to_user_name }) of a push with suite_id
local function suite_app(F, body, bad)
    local P = F.provider
    local suite = P and P.suites[body.suite_id]
    if not suite then
        bad("suite_id must be a suite of the fixture's provider")
    end
    if body.agentid ~= nil then
        bad("agentid goes without suite_id (the suite's app in the corp is the one installed)")
    end
    if body.verify then
        -- the URL check of either URL: the provider's corpid inside (reference §3.1)
        return { callback = suite.callback, agentid = "" }, { receive_id = P.corpid }
    end
    if body.info_type ~= nil or body.xml ~= nil then
        -- the 指令回调 URL: ToUserName the suite_id, AgentID empty
        return { callback = suite.callback, agentid = "" },
            { receive_id = suite.suite_id, to_user_name = suite.suite_id }
    end
    local corpid = body.corpid
    local rec = corpid and require("wecom.emulator.provider").active_auth(suite.suite_id, corpid)
    if not rec then
        bad("an event with suite_id needs corpid, a corp that has the suite installed")
    end
    -- the 数据回调 URL (third-party) or the 代开发 app's URL: the corp's id
    return { callback = suite.callback, agentid = rec.agentid },
        { corpid = corpid, receive_id = corpid, to_user_name = corpid }
end

-- push(body, bad) -> answer table; bad(msg) raises a 400 for the caller.
function _M.push(body, bad)
    local F = fixture.get()
    if type(body.url) ~= "string" then
        bad("url must be a string")
    end
    local target = parse_url(body.url)
    if not target then
        bad("url must be an http:// or https:// URL")
    end
    for _, field in ipairs { "event", "info_type", "xml", "to_user", "from_user", "echostr", "receive_id",
        "suite_id", "corpid" } do
        if body[field] ~= nil and type(body[field]) ~= "string" then
            bad(field .. " must be a string")
        end
    end
    local modes = (body.event ~= nil and 1 or 0) + (body.xml ~= nil and 1 or 0) + (body.verify and 1 or 0)
        + (body.info_type ~= nil and 1 or 0)
    if modes ~= 1 then
        bad("give exactly one of event, info_type, xml or verify")
    end
    if body.fields ~= nil then
        if type(body.fields) ~= "table" or body.fields[1] ~= nil then
            bad("fields must be an object")
        end
        local problem = check_fields(body.fields, 1)
        if problem then
            bad(problem)
        end
    end
    local app, sealing
    if body.suite_id ~= nil then
        app, sealing = suite_app(F, body, bad)
    else
        if body.info_type ~= nil then
            bad("info_type goes with suite_id (a suite's 指令回调 URL)")
        end
        local agentid = body.agentid
        if agentid == nil then
            app = F.system_app or F.upstream.apps[1]
        elseif type(agentid) == "number" then
            app = F.apps[agentid]
        end
        if not app then
            bad("agentid must be an upstream app's agentid")
        end
        if not app.callback then
            bad("app " .. app.agentid .. " has no callback settings in the fixture")
        end
        sealing = { corpid = F.upstream.corpid }
    end
    local attempts = body.attempts or 3
    if type(attempts) ~= "number" or attempts < 1 or attempts > 3 then
        bad("attempts must be 1..3")
    end
    local timeout_ms = body.timeout_ms or 5000
    if type(timeout_ms) ~= "number" or timeout_ms <= 0 then
        bad("timeout_ms must be a positive number")
    end

    local plaintext
    if body.verify then
        plaintext = body.echostr or numeric_nonce() .. numeric_nonce()
    elseif body.xml then
        plaintext = body.xml
    elseif body.info_type then
        plaintext = info_xml(body, body.suite_id, store.now())
    else
        plaintext = event_xml(body, sealing.corpid, app.agentid, store.now())
    end
    local answer, err = deliver(F, app, target, plaintext, { verify = body.verify, attempts = attempts,
        timeout_ms = timeout_ms, receive_id = body.receive_id or sealing.receive_id,
        to_user_name = sealing.to_user_name })
    if not answer then
        bad(err)
    end
    if body.verify then
        answer.echostr = plaintext
    end
    return answer
end

-- Automatic pushes ------------------------------------------------------------

local LOG_SIZE = 50

-- The app's callback URL now: set through the control API ("" = none),
-- else the fixture's callback.url.
function _M.callback_url(app)
    local set = store.get("cburl:" .. app.agentid)
    if set ~= nil then
        return set ~= "" and set or nil
    end
    return app.callback and app.callback.url
end

function _M.set_callback_url(agentid, url)
    store.set("cburl:" .. agentid, url or "")
end

function _M.valid_url(url)
    return parse_url(url) ~= nil
end

local function record(entry)
    store.with_lock("pushlog", function()
        local log = store.get_json("pushlog") or {}
        log[#log + 1] = entry
        while #log > LOG_SIZE do
            table.remove(log, 1)
        end
        store.set_json("pushlog", log)
    end)
end

-- The automatic deliveries so far, oldest first (the last 50).
function _M.log()
    return json.array(store.get_json("pushlog") or {})
end

local function send_now(premature, F, app, url, xml, event)
    if premature then
        return
    end
    local entry = { event = event, agentid = app.agentid, url = url }
    local answer, err = deliver(F, app, parse_url(url), xml, {})
    if answer then
        entry.status, entry.attempts, entry.ok, entry.error = answer.status, answer.attempts, answer.ok, answer.error
    else
        entry.ok, entry.error = false, err
    end
    record(entry)
    if not entry.ok then
        ngx.log(ngx.WARN, "wecom emulator: ", event, " push to app ", app.agentid, " failed: ",
            tostring(entry.error or entry.status))
    end
end

-- send_event(agentid, xml, event) -> true when a delivery was started. The
-- delivery runs in a timer, so the request that caused the event does not
-- wait for the receiver.
function _M.send_event(agentid, xml, event)
    local F = fixture.get()
    local app = F.apps[agentid]
    local url = app and app.callback and _M.callback_url(app)
    if not url then
        return false
    end
    local ok, err = ngx.timer.at(0, send_now, F, app, url, xml, event)
    if not ok then
        ngx.log(ngx.ERR, "wecom emulator: cannot schedule the ", event, " push: ", tostring(err))
        return false
    end
    return true
end

-- The pieces the provider control endpoints (provider_control.lua) seal and
-- POST their 指令回调 envelopes with.
_M.cdata, _M.parse_url, _M.http = cdata, parse_url, http
_M.seal, _M.signed, _M.envelope = seal, signed, envelope

-- §9.6: what WeCom sends when an async job finished.
function _M.batch_job_xml(corpid, jobid, job_type, now)
    return concat {
        "<xml><ToUserName>", cdata(corpid), "</ToUserName>",
        "<FromUserName>", cdata("sys"), "</FromUserName>",
        "<CreateTime>", tostring(floor(now)), "</CreateTime>",
        "<MsgType>", cdata("event"), "</MsgType>",
        "<Event>", cdata("batch_job_result"), "</Event>",
        "<BatchJob><JobId>", cdata(jobid), "</JobId>",
        "<JobType>", cdata(job_type), "</JobType>",
        "<ErrCode>0</ErrCode><ErrMsg>", cdata("ok"), "</ErrMsg></BatchJob></xml>",
    }
end

return _M
