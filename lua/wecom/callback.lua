-- wecom.callback: receive WeCom callbacks (WXBizMsgCrypt) and route events.
--
--   local cb = callback.new{ token = T, aes_key = K43, receive_id = "wwCORP" }
--   cb:verify_url(query)        --> echo plaintext | nil, err   (GET URL check)
--   cb:decrypt(query, body)     --> event | nil, err            (POST, XML or JSON envelope)
--   cb:reply(xml [, opts])      --> encrypted reply XML | nil, err
--   cb:reply_json(msg [, opts]) --> encrypted reply JSON | nil, err
--   cb:encrypt_event(msg [, opts]) --> body, query | nil, err   (what WeCom would POST)
--   cb:encrypt_echostr([echo [, opts]]) --> query, echo | nil, err (what WeCom would GET)
--   cb:claim(event)             --> true | false, reply | nil, err (dedupe of resends)
--   cb:settle(event, reply), cb:release(event) --> true | nil, err
--
-- Errors are wecom.errors objects of kind "callback" whose `code` is the
-- WXBizMsgCrypt code (-40001 ... -40011).  The crypter keeps the token and
-- key inside the C core: a callback object holds neither, so neither can
-- reach a log line through it.

local core = require "wecom.core"
local errors = require "wecom.errors"
local json = require "wecom.json"
local url = require "wecom.url"

local json_string = json.string
local json_decode_object = json.decode_object
local parse_query = url.parse_query
local encode_query = url.encode_query
local usage = errors.usage
local describe = errors.describe
local opt_arg = errors.opt

local xml_decode = core.xml_decode
local callback_open = core.callback_open
local callback_open_query = core.callback_open_query
local callback_plaintext = core.callback_plaintext

local type = type
local rawset = rawset
local tostring = tostring
local tonumber = tonumber
local setmetatable = setmetatable
local error = error
local select = select
local ipairs = ipairs
local getmetatable = getmetatable
local floor = math.floor
local abs = math.abs
local min = math.min
local os_time = os.time
local byte = string.byte
local find = string.find
local format = string.format
local gsub = string.gsub
local sub = string.sub


local _M = {}

local MAX_BODY = 1024 * 1024

-- WXBizMsgCrypt codes (reference 7.6).
local CODES = {
    VALIDATE_SIGNATURE = -40001,
    PARSE_XML          = -40002,
    COMPUTE_SIGNATURE  = -40003,
    ILLEGAL_AES_KEY    = -40004,
    VALIDATE_CORPID    = -40005,
    ENCRYPT_AES        = -40006,
    DECRYPT_AES        = -40007,
    ILLEGAL_BUFFER     = -40008,
    ENCODE_BASE64      = -40009,
    DECODE_BASE64      = -40010,
    GEN_RETURN_XML     = -40011,
}
_M.CODES = CODES

local function fail(code, errmsg)
    return nil, errors.new("callback", errmsg, { code = code })
end

---------------------------------------------------------------------------
-- query strings
---------------------------------------------------------------------------

-- parse_query("a=1&b=%2B") -> { a = "1", b = "+" }: wecom.url's, kept here
-- under its documented name.  '+' stays '+' (echostr and Encrypt are base64);
-- a repeated key keeps its values in a list, which the checks below reject.
function _M.parse_query(s)
    if type(s) ~= "string" then
        usage("wecom.callback.parse_query", "query must be a string (got " .. describe(s) .. ")")
    end
    return parse_query(s)
end

-- build_query{ b = "x+y", a = 1 } -> "a=1&b=x%2By" (wecom.url.encode_query:
-- keys sorted, so the output is stable)
function _M.build_query(query)
    if type(query) ~= "table" then
        usage("wecom.callback.build_query", "query must be a table (got " .. describe(query) .. ")")
    end
    return encode_query(query, "wecom.callback.build_query")
end

---------------------------------------------------------------------------
-- small encoders
---------------------------------------------------------------------------

-- A CDATA section cannot contain "]]>"; split it across two sections.
local function cdata(s)
    return "<![CDATA[" .. gsub(s, "%]%]>", "]]]]><![CDATA[>") .. "]]>"
end

---------------------------------------------------------------------------
-- options
---------------------------------------------------------------------------

local function check_receive_id(value)
    if value == false then
        return false
    end
    if type(value) == "string" or type(value) == "function" then
        return value   -- a function: fn(receive_id) -> whether it is ours
    end
    if type(value) == "table" then
        local set, first = {}, nil
        for i, id in ipairs(value) do
            if type(id) ~= "string" then
                error("wecom.callback.new: receive_id[" .. i .. "] must be a string", 3)
            end
            set[id] = true
            first = first or id
        end
        if first == nil then
            error("wecom.callback.new: receive_id list is empty (use false for no check)", 3)
        end
        return set, first
    end
    error("wecom.callback.new: receive_id must be a string, a list of strings, a function or false, got "
          .. type(value), 3)
end

-- What opts.dedupe must be: any of the SDK's stores (or one with the same
-- methods), which all give lock(key, ttl) "add if absent" semantics.
local STORE = errors.kind("a wecom store (wecom.store.memory(), .shdict(name), .redis{...})", function(v)
    return type(v) == "table" and type(v.lock) == "function" and type(v.unlock) == "function"
        and type(v.get) == "function" and type(v.set) == "function"
end)

-- WeCom resends an event it saw no 200 for within 5 s, up to 3 times: five
-- minutes covers every resend with room for clocks and queues.
local DEDUPE_TTL = 300
-- How long a claimed message counts as being handled when its delivery never
-- settles nor releases it (its process died): its resends get "pending"
-- until then, and the one after is handled.  Twice WeCom's 5 s deadline: a
-- handler still running by then was given up on by WeCom long before.
local DEDUPE_LEASE = 10

local mt = {}
mt.__index = mt

function mt.__tostring(self)
    return "wecom.callback (receive_id check: " .. self.receive_mode .. ")"
end

function _M.new(opts)
    if type(opts) ~= "table" then
        error("wecom.callback.new: expected an options table, got " .. type(opts), 2)
    end
    if type(opts.token) ~= "string" or opts.token == "" then
        error("wecom.callback.new: token must be a non-empty string", 2)
    end
    if type(opts.aes_key) ~= "string" then
        error("wecom.callback.new: aes_key must be a string (the 43-char EncodingAESKey)", 2)
    end
    if #opts.aes_key ~= 43 or find(opts.aes_key, "[^%w]") then
        -- the key itself never goes into the message
        error("wecom.callback.new: aes_key must be 43 characters from [A-Za-z0-9] (got "
              .. #opts.aes_key .. " characters)", 2)
    end
    if opts.receive_id == nil then
        error("wecom.callback.new: receive_id is required (a corpid/suite_id, a list, or false)", 2)
    end
    local receive_id, first_id = check_receive_id(opts.receive_id)
    local max_skew = opts.max_skew
    if max_skew ~= nil and (type(max_skew) ~= "number" or max_skew < 0 or max_skew ~= max_skew) then
        error("wecom.callback.new: max_skew must be a non-negative number of seconds", 2)
    end

    local dedupe = opt_arg("wecom.callback.new", "opts.dedupe", opts.dedupe, STORE)
    local dedupe_ttl = opt_arg("wecom.callback.new", "opts.dedupe_ttl", opts.dedupe_ttl, errors.seconds)
        or DEDUPE_TTL
    local dedupe_lease = opt_arg("wecom.callback.new", "opts.dedupe_lease", opts.dedupe_lease, errors.seconds)
    if dedupe_lease and dedupe_lease > dedupe_ttl then
        error("wecom.callback.new: opts.dedupe_lease (" .. dedupe_lease .. " s) must not exceed dedupe_ttl ("
              .. dedupe_ttl .. " s)", 2)
    end

    local crypter = core.crypter(opts.token, opts.aes_key)

    local self = {
        crypter = crypter,
        max_skew = max_skew,
        dedupe = dedupe,
        dedupe_ttl = dedupe and dedupe_ttl or nil,
        dedupe_lease = dedupe and (dedupe_lease or min(DEDUPE_LEASE, dedupe_ttl)) or nil,
        receive_mode = receive_id == false and "off"
                       or type(receive_id) == "string" and "one"
                       or type(receive_id) == "function" and "function" or "list",
    }
    if self.receive_mode == "one" then
        self.receive_id = receive_id
        self.reply_id = receive_id
    elseif self.receive_mode == "list" then
        self.receive_ids = receive_id
        self.reply_id = first_id
    elseif self.receive_mode == "function" then
        self.receive_check = receive_id
        self.reply_id = ""
    else
        self.reply_id = ""
    end
    return setmetatable(self, mt)
end

---------------------------------------------------------------------------
-- checks shared by verify_url and decrypt
---------------------------------------------------------------------------

local function query_table(query, method)
    if type(query) == "string" then
        return parse_query(query)
    end
    if type(query) ~= "table" then
        error("wecom.callback:" .. method .. ": query must be a table or a query string, got "
              .. type(query), 3)
    end
    return query
end

-- A value from the query, which must be there exactly once.
local function query_value(query, name)
    local v = query[name]
    local tv = type(v)
    if tv == "string" then
        return v
    end
    if tv == "number" then
        return tostring(v)
    end
    if v == nil or v == true then
        return nil, "missing " .. name .. " in the query"
    end
    return nil, name .. " must appear once in the query"
end

local function signed_params(self, query)
    local sig, err = query_value(query, "msg_signature")
    if not sig then
        return fail(CODES.VALIDATE_SIGNATURE, err)
    end
    local ts
    ts, err = query_value(query, "timestamp")
    if not ts then
        return fail(CODES.VALIDATE_SIGNATURE, err)
    end
    local nonce
    nonce, err = query_value(query, "nonce")
    if not nonce then
        return fail(CODES.VALIDATE_SIGNATURE, err)
    end
    local skew = self.max_skew
    if skew then
        local t = find(ts, "^%d+$") and tonumber(ts)
        if not t then
            return fail(CODES.VALIDATE_SIGNATURE, "timestamp is not a number")
        end
        if abs(os_time() - t) > skew then
            return fail(CODES.VALIDATE_SIGNATURE, "timestamp outside max_skew")
        end
    end
    return sig, ts, nonce
end

-- A decrypted receive id for an error message: at most 64 bytes, quoted,
-- control characters escaped (JSON style), so the message stays one line.
local function short_id(id)
    if #id > 64 then
        return json_string(sub(id, 1, 64)) .. "..."
    end
    return json_string(id)
end

-- The error for a decrypted receive id that is not ours, or nil.
local function receive_id_error(self, rid)
    local mode = self.receive_mode
    if mode == "one" then
        if rid ~= self.receive_id then
            return select(2, fail(CODES.VALIDATE_CORPID, "receive id " .. short_id(rid) .. " does not match"))
        end
    elseif mode == "list" then
        if not self.receive_ids[rid] then
            return select(2, fail(CODES.VALIDATE_CORPID, "receive id " .. short_id(rid) .. " is not in the list"))
        end
    elseif mode == "function" and not self.receive_check(rid) then
        return select(2, fail(CODES.VALIDATE_CORPID, "receive id " .. short_id(rid) .. " is not accepted"))
    end
    return nil
end

-- Verifies, decrypts and checks the receive id.
local function open(self, sig, ts, nonce, encrypt)
    local msg, rid, code = self.crypter:open(sig, ts, nonce, encrypt)
    if not msg then
        return fail(code, rid)
    end
    local err = receive_id_error(self, rid)
    if err then
        return nil, err
    end
    return msg
end

---------------------------------------------------------------------------
-- URL verification (GET)
---------------------------------------------------------------------------

function mt.verify_url(self, query)
    query = query_table(query, "verify_url")
    local sig, ts, nonce = signed_params(self, query)
    if not sig then
        return nil, ts
    end
    local echostr, err = query_value(query, "echostr")
    if not echostr then
        return fail(CODES.VALIDATE_SIGNATURE, err)
    end
    return open(self, sig, ts, nonce, echostr)
end

---------------------------------------------------------------------------
-- events (POST)
---------------------------------------------------------------------------

-- The first byte that is not whitespace (or a UTF-8 BOM), as a string.
-- Byte compares first: this runs twice per event.
local function first_char(s)
    local b = byte(s, 1)
    if b == 60 then         -- '<'
        return "<"
    elseif b == 123 then    -- '{'
        return "{"
    end
    local pos = find(s, "[^ \t\r\n]")
    if pos and byte(s, pos) == 0xEF and sub(s, pos, pos + 2) == "\239\187\191" then
        pos = find(s, "[^ \t\r\n]", pos + 3)
    end
    return pos and sub(s, pos, pos)
end

local function xml_envelope(body)
    local tbl, root = xml_decode(body)
    if not tbl then
        return nil, "envelope is not valid XML: " .. tostring(root)
    end
    local encrypt = tbl.Encrypt
    if type(encrypt) ~= "string" or encrypt == "" then
        return nil, "envelope has no Encrypt element"
    end
    return encrypt
end

local function json_envelope(body)
    local tbl = json_decode_object(body)
    if not tbl then
        return nil, "envelope is not one JSON object"
    end
    local encrypt = tbl.encrypt
    if type(encrypt) ~= "string" or encrypt == "" then
        return nil, "envelope has no encrypt field"
    end
    return encrypt
end

local function first_string(a, b, c)
    if type(a) == "string" and a ~= "" then return a end
    if type(b) == "string" and b ~= "" then return b end
    if type(c) == "string" and c ~= "" then return c end
    return nil
end

local function first_number(a, b, c)
    return tonumber(a) or tonumber(b) or tonumber(c)
end

-- Adds the normalised fields (type, corpid, userid, agentid, time) to a
-- decoded event.  XML events use WeCom's CamelCase names; JSON ones the
-- lower-case names of the JSON variant.  Exposed for callers that decrypt
-- elsewhere.
-- (The first name of each field is tried inline: it is the one XML events
-- carry, and this runs for every event.)
local function normalize(event)
    local v = event.Event
    if type(v) ~= "string" or v == "" then
        v = first_string(nil, event.InfoType, event.MsgType)
            or first_string(event.event, event.infotype, event.msgtype)
    end
    event.type = v
    v = event.ToUserName
    if type(v) ~= "string" or v == "" then
        v = first_string(nil, event.CorpId, event.AuthCorpId)
            or first_string(event.tousername, event.corpid)
    end
    event.corpid = v
    v = event.FromUserName
    if type(v) ~= "string" or v == "" then
        v = first_string(nil, event.fromusername, event.userid)
    end
    event.userid = v
    event.agentid = tonumber(event.AgentID) or first_number(nil, event.AgentId, event.agentid)
    event.time = tonumber(event.CreateTime) or first_number(nil, event.TimeStamp)
        or first_number(event.createtime, event.timestamp)
    return event
end
_M.normalize = normalize

-- An event's plaintext (event.xml, or event.json) is made a string when it
-- is first read, not before: LuaJIT hashes every new string into its
-- string table, where plaintexts of one template and length collide, which
-- cost as much as all the rest of a decrypt for a handler that never reads
-- it.  Meanwhile it waits in the event's own metatable (field text): the
-- string, or the C core's box of its bytes.  (A shared weak-keyed table
-- would cost more per event than this small table, and its upkeep in every
-- garbage collection cycle grows with the events not yet collected.)
local function plaintext_index(field)
    return function(event, key)
        if key ~= field then
            return nil
        end
        -- this function is reached only through the metatable it reads;
        -- the text moves from there into the event, once
        local meta = getmetatable(event)
        local text = meta.text
        if text ~= nil then
            if type(text) ~= "string" then
                text = callback_plaintext(text)
            end
            meta.text = nil
            rawset(event, key, text)
        end
        return text
    end
end
local XML_TEXT, JSON_TEXT = plaintext_index("xml"), plaintext_index("json")

local function with_plaintext(event, index, text)
    return setmetatable(event, { __index = index, text = text })
end

local function parse_plaintext(msg)
    local c = byte(msg, 1) == 60 and "<" or first_char(msg)
    if c == "<" then
        local event, root = xml_decode(msg)
        if not event then
            return fail(CODES.PARSE_XML, "decrypted message is not valid XML: " .. tostring(root))
        end
        return normalize(with_plaintext(event, XML_TEXT, msg))
    end
    if c == "{" then
        -- wecom.json: integers stay integers, so agentid is 1000002 here as
        -- in the XML form, not 1000002.0
        local event = json_decode_object(msg)
        if not event then
            return fail(CODES.PARSE_XML, "decrypted message is not one JSON object")
        end
        return normalize(with_plaintext(event, JSON_TEXT, msg))
    end
    return fail(CODES.PARSE_XML, "decrypted message is neither XML nor JSON")
end

-- Every check in its order, each failure with its own error.
local function decrypt_checked(self, query, body)
    query = query_table(query, "decrypt")
    if body == nil or body == "" then
        return fail(CODES.PARSE_XML, "empty body")
    end
    if type(body) ~= "string" then
        -- level 2 is decrypt's caller: decrypt tail-calls here
        error("wecom.callback:decrypt: body must be a string, got " .. type(body), 2)
    end
    if #body > MAX_BODY then
        return fail(CODES.PARSE_XML, "body larger than 1 MiB")
    end
    local sig, ts, nonce = signed_params(self, query)
    if not sig then
        return nil, ts
    end
    local c = first_char(body)
    local encrypt, err
    if c == "<" then
        encrypt, err = xml_envelope(body)
    elseif c == "{" then
        encrypt, err = json_envelope(body)
    else
        err = "body is neither XML nor JSON"
    end
    if not encrypt then
        return fail(CODES.PARSE_XML, err)
    end
    local msg
    msg, err = open(self, sig, ts, nonce, encrypt)
    if not msg then
        return nil, err
    end
    return parse_plaintext(msg)
end

-- The usual POST in one C call (core.callback_open, or
-- core.callback_open_query for the raw query string): the three signed
-- strings, each once, an XML envelope string with one Encrypt, no max_skew.
-- For such a request that call does what decrypt_checked would, step for
-- step; anything else, and any request it does not take, goes to
-- decrypt_checked to be reported.  (Both answer false unless the query
-- holds the three strings and body is a string.)  Given the expected
-- receive id, the C call hands back that very string when it matches; with
-- an event, the plaintext comes boxed (see plaintext_field).
function mt.decrypt(self, query, body)
    if self.max_skew == nil then
        local msg, rid, event
        local tq = type(query)
        if tq == "string" then
            msg, rid, event = callback_open_query(self.crypter, query, body, self.receive_id, true)
        elseif tq == "table" then
            msg, rid, event = callback_open(self.crypter, query.msg_signature, query.timestamp,
                                            query.nonce, body, self.receive_id, true)
        else
            msg = false
        end
        if msg then
            if rid ~= self.receive_id and self.receive_mode ~= "off" then
                local err = receive_id_error(self, rid)
                if err then
                    return nil, err
                end
            end
            if event then
                return normalize(with_plaintext(event, XML_TEXT, msg))
            end
            return parse_plaintext(msg)
        elseif msg == nil then
            return fail(event, rid)
        end
    end
    return decrypt_checked(self, query, body)
end

---------------------------------------------------------------------------
-- replies and outgoing envelopes
---------------------------------------------------------------------------

local function opts_table(opts, method)
    if opts == nil then
        return {}
    end
    if type(opts) ~= "table" then
        error("wecom.callback:" .. method .. ": options must be a table, got " .. type(opts), 3)
    end
    return opts
end

local function stamp(opts, method)
    local ts = opts.timestamp
    if ts == nil then
        ts = tostring(os_time())
    elseif type(ts) == "number" and ts >= 0 and floor(ts) == ts then
        ts = format("%d", ts)
    elseif type(ts) ~= "string" or not find(ts, "^%d+$") then
        error("wecom.callback:" .. method .. ": timestamp must be a non-negative integer", 3)
    end
    local nonce = opts.nonce
    if nonce == nil then
        nonce = core.nonce(16)
    elseif type(nonce) == "number" then
        nonce = format("%d", nonce)
    elseif type(nonce) ~= "string" or nonce == "" or find(nonce, "[%c\"\\]") then
        error("wecom.callback:" .. method .. ": nonce must be a non-empty printable string", 3)
    end
    return ts, nonce
end

local function seal(self, msg, opts, method)
    if type(msg) ~= "string" then
        error("wecom.callback:" .. method .. ": message must be a string, got " .. type(msg), 3)
    end
    opts = opts_table(opts, method)
    local ts, nonce = stamp(opts, method)
    local rid = opts.receive_id
    if rid == nil then
        rid = self.reply_id
    elseif type(rid) ~= "string" then
        error("wecom.callback:" .. method .. ": receive_id must be a string", 3)
    end
    local random16 = opts.random16
    if random16 ~= nil and (type(random16) ~= "string" or #random16 ~= 16) then
        error("wecom.callback:" .. method .. ": random16 must be a 16-byte string", 3)
    end
    local crypter = self.crypter
    local encrypt, message, code = crypter:encrypt(msg, rid, random16)
    if not encrypt then
        return fail(code, message)
    end
    return encrypt, crypter:signature(ts, nonce, encrypt), ts, nonce, rid, opts
end

local REPLY_XML = "<xml>\n<Encrypt>%s</Encrypt>\n<MsgSignature>%s</MsgSignature>\n"
                  .. "<TimeStamp>%s</TimeStamp>\n<Nonce>%s</Nonce>\n</xml>"

-- The passive reply of reference 7.6, byte for byte.
function mt.reply(self, xml, opts)
    local encrypt, sig, ts, nonce = seal(self, xml, opts, "reply")
    if not encrypt then
        return nil, sig
    end
    return format(REPLY_XML, cdata(encrypt), cdata(sig), ts, cdata(nonce))
end

-- The reply of the JSON variant (reference 8); timestamp is a string as in
-- the official WXBizJsonMsgCrypt.
function mt.reply_json(self, msg, opts)
    local encrypt, sig, ts, nonce = seal(self, msg, opts, "reply_json")
    if not encrypt then
        return nil, sig
    end
    return '{"encrypt":' .. json_string(encrypt) .. ',"msgsignature":' .. json_string(sig)
        .. ',"timestamp":' .. json_string(ts) .. ',"nonce":' .. json_string(nonce) .. "}"
end

-- The envelope and query WeCom would POST for `msg` (an event's XML, or JSON
-- with format = "json"): body, { msg_signature =, timestamp =, nonce = }.
-- opts: timestamp, nonce, receive_id (default: the configured one, the
-- first of a list, "" when unchecked), agentid, format ("xml" | "json").
function mt.encrypt_event(self, msg, opts)
    local encrypt, sig, ts, nonce, rid, o = seal(self, msg, opts, "encrypt_event")
    if not encrypt then
        return nil, sig
    end
    local agentid = o.agentid
    if agentid == nil then
        agentid = ""
    elseif type(agentid) == "number" then
        agentid = format("%d", agentid)
    elseif type(agentid) ~= "string" then
        error("wecom.callback:encrypt_event: agentid must be a number or a string", 2)
    end
    local body
    local fmt = o.format or "xml"
    if fmt == "xml" then
        body = "<xml><ToUserName>" .. cdata(rid) .. "</ToUserName><AgentID>" .. cdata(agentid)
            .. "</AgentID><Encrypt>" .. cdata(encrypt) .. "</Encrypt></xml>"
    elseif fmt == "json" then
        body = '{"tousername":' .. json_string(rid) .. ',"encrypt":' .. json_string(encrypt)
            .. ',"agentid":' .. json_string(agentid) .. "}"
    else
        error('wecom.callback:encrypt_event: format must be "xml" or "json"', 2)
    end
    return body, { msg_signature = sig, timestamp = ts, nonce = nonce }
end

-- The query of a URL check as WeCom would send it (values not
-- percent-encoded; build_query encodes them): query, echo.
function mt.encrypt_echostr(self, echo, opts)
    if echo == nil then
        echo = core.nonce(19)
    end
    local encrypt, sig, ts, nonce = seal(self, echo, opts, "encrypt_echostr")
    if not encrypt then
        return nil, sig
    end
    return { msg_signature = sig, timestamp = ts, nonce = nonce, echostr = encrypt }, echo
end

function mt.close(self)
    self.crypter:close()
end

---------------------------------------------------------------------------
-- dedupe (opt-in: callback.new{ dedupe = store [, dedupe_ttl = seconds] })
---------------------------------------------------------------------------

-- An event's key in the dedupe store: a SHA-1 over the decrypted message
-- keyed with the callback token (crypter:signature of it), so a resend is
-- recognised however WeCom re-encrypts or re-signs it, two apps never share
-- keys, and the store learns nothing about the message.
local DEDUPE_PREFIX = "wecom:callback:"

-- The decrypted message of an event from cb:decrypt, or a raised error.
local function event_text(event, method)
    if type(event) ~= "table" then
        usage("wecom.callback:" .. method, "event must be a table from cb:decrypt (got "
            .. describe(event) .. ")", 3)
    end
    local text = event.xml
    if type(text) ~= "string" then
        text = event.json
        if type(text) ~= "string" then
            usage("wecom.callback:" .. method, "event must come from cb:decrypt (it has neither"
                .. " xml nor json)", 3)
        end
    end
    return text
end

local function store_error(what, err)
    if errors.is_error(err) then
        return err
    end
    return errors.new("store", "callback dedupe: " .. what .. " failed: " .. tostring(err))
end

-- The dedupe store and the message's key in it: store, key | nil (no dedupe
-- store: nothing to do) | store, nil, err (the fingerprint failed).
local function dedupe_slot(self, text)
    local store = self.dedupe
    if not store then
        return nil
    end
    local fp, message = self.crypter:signature("", "", text)
    if not fp then
        return store, nil, store_error("fingerprint", message)
    end
    return store, DEDUPE_PREFIX .. fp
end

-- A store write's (ok, err) as true | nil, err.
local function written(what, ok, err)
    if not ok then
        return nil, store_error(what, err)
    end
    return true
end

-- What settle records for a message answered without a passive reply (a
-- sealed reply is an XML or JSON envelope, never this).
local SETTLED_EMPTY = "-"

-- claim(event) -> true: the first delivery of this message within
-- dedupe_ttl, handle it | false, reply: a resend of a settled message
-- (reply: the sealed reply settle recorded, or nil when it had none) |
-- false, nil, true: a resend while the first delivery has not settled yet
-- (answer it with an error, so WeCom resends it once more: the first may
-- still fail and be released) | nil, err: the store failed (handling the
-- event anyway is the safe choice).  Without dedupe: always true.
-- The claim itself is a lock for dedupe_lease only, so a delivery that dies
-- unsettled blocks its resends that long at most; what outlives it is the
-- record settle writes, which is read after the lock is taken (a message
-- settled before its lease ended is no first delivery).
function mt.claim(self, event)
    local store, key, err = dedupe_slot(self, event_text(event, "claim"))
    if not store then
        return true
    elseif not key then
        return nil, err
    end
    local locked
    locked, err = store:lock(key, self.dedupe_lease)
    if locked == nil then
        return nil, store_error("lock", err)
    end
    -- a store that cannot answer: not known to be settled
    local reply = store:get(key .. ":reply")
    if type(reply) == "string" and reply ~= "" then
        if locked then
            store:unlock(key)   -- the lock just taken: the record answers this resend
        end
        return false, reply ~= SETTLED_EMPTY and reply or nil
    end
    if locked then
        return true
    end
    return false, nil, true
end

-- settle(event [, reply]) -> true | nil, err: records that a claimed event
-- was handled and the (sealed) reply sent for it, if any, so a resend gets
-- the same answer, then gives up the claim (the record answers from now on,
-- and an nginx shared dict frees an entry only once those before it in its
-- queue have expired).  Call it for every claimed event that was handled.
function mt.settle(self, event, reply)
    local text = event_text(event, "settle")
    if reply ~= nil and type(reply) ~= "string" then
        usage("wecom.callback:settle", "reply must be a string (got " .. describe(reply) .. ")")
    end
    local store, key, err = dedupe_slot(self, text)
    if not store then
        return true
    elseif not key then
        return nil, err
    end
    if reply == nil or reply == "" then
        reply = SETTLED_EMPTY
    end
    local ok, set_err = written("set", store:set(key .. ":reply", reply, core.now() + self.dedupe_ttl))
    -- also when the record failed: a resend is then handled again, sooner
    -- than the lease would allow
    local unlocked, unlock_err = written("unlock", store:unlock(key))
    if not ok then
        return nil, set_err
    end
    return unlocked, unlock_err
end

-- release(event) -> true | nil, err: forgets a claimed event whose handling
-- failed, so WeCom's next resend is handled again.
function mt.release(self, event)
    local store, key, err = dedupe_slot(self, event_text(event, "release"))
    if not store then
        return true
    elseif not key then
        return nil, err
    end
    return written("unlock", store:unlock(key))
end

---------------------------------------------------------------------------
-- router
---------------------------------------------------------------------------

local decorate = require("wecom.events").decorate   -- typed contact/customer events

local router_mt = {}
router_mt.__index = router_mt

local function check_handler(fn, method)
    if type(fn) == "function" then
        return
    end
    local m = getmetatable(fn)
    if type(m) == "table" and type(m.__call) == "function" then
        return
    end
    error("wecom.callback router:" .. method .. ": handler must be a function, got " .. type(fn), 3)
end

-- router:on(type, fn): fn(event, ...) handles events of that type.
-- "change_chain.create_chain" (type "." ChangeType) is more specific than
-- "change_chain" and wins when both are registered.
function router_mt.on(self, event_type, fn)
    if type(event_type) ~= "string" or event_type == "" then
        error("wecom.callback router:on: event type must be a non-empty string", 2)
    end
    check_handler(fn, "on")
    self.handlers[event_type] = fn
    return self
end

function router_mt.default(self, fn)
    check_handler(fn, "default")
    self.fallback = fn
    return self
end

-- Finds the handler for an event: type.ChangeType, then type, then the
-- default; nil when none.
function router_mt.handler(self, event)
    local handlers = self.handlers
    local t = event.type
    if type(t) == "string" then
        local change = event.ChangeType
        if type(change) == "string" and change ~= "" then
            local fn = handlers[t .. "." .. change]
            if fn then
                return fn
            end
        end
        local fn = handlers[t]
        if fn then
            return fn
        end
    end
    return self.fallback
end

-- dispatch(event, ...) -> whatever the handler returns (nothing when no
-- handler and no default).  Errors raised by a handler propagate.
function router_mt.dispatch(self, event, ...)
    if type(event) ~= "table" then
        error("wecom.callback router:dispatch: event must be a table, got " .. type(event), 2)
    end
    decorate(event)   -- typed fields of contact/customer events (wecom.events)
    local fn = self:handler(event)
    if fn then
        return fn(event, ...)
    end
end

function _M.router()
    return setmetatable({ handlers = {}, fallback = nil }, router_mt)
end

return _M
