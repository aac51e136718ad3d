-- wecom.ngx.callback_handler in a real nginx, driven byte for byte from
-- here: this spec plays WeCom with cb:encrypt_event / cb:encrypt_echostr and
-- checks each answer (status, body, headers) and error.log.  The router on
-- the nginx side (spec/openresty/callback_site.lua) misbehaves on purpose.

local cjson = require "cjson"
local callback = require "wecom.callback"
local core = require "wecom.core"
local callback_nginx = require "helpers.callback_nginx"

local TOKEN = "HandlerSpecTokenQ7"
local AES_KEY = "Zm9yIHRoZSBoYW5kbGVyIHNwZWMgb25seSAxMjM0NTY"
local CORPID = "wwHANDLERSPEC"
-- what the "boom" handler raises (spec/openresty/callback_site.lua)
local HANDLER_ERROR = "handler exploded: DETAIL-ONLY-FOR-THE-LOG"

local CONF = callback_nginx.conf {
    dicts = { results = "1m" },
    http = [[
    # bodies over 8 KB go to a temporary file: the handler must read it
    client_body_buffer_size 8k;
]],
    servers = { { text = [[
        location = /cb {
            content_by_lua_block { require("callback_site").handle() }
        }
        location = /cb_big {
            client_max_body_size 4m;
            content_by_lua_block { require("callback_site").handle() }
        }
        location = /cb_bare {
            content_by_lua_block { require("callback_site").bare() }
        }
        location = /last {
            content_by_lua_block { require("callback_site").last() }
        }
]] } },
}

local function event_xml(fields)
    local parts = { "<xml>" }
    for _, kv in ipairs(fields) do
        parts[#parts + 1] = "<" .. kv[1] .. "><![CDATA[" .. kv[2] .. "]]></" .. kv[1] .. ">"
    end
    parts[#parts + 1] = "</xml>"
    return table.concat(parts)
end

local function app_event(name, extra)
    local fields = {
        { "ToUserName", "wwDOWNSTREAM01" }, { "FromUserName", "sys" }, { "CreateTime", "1700000000" },
        { "MsgType", "event" }, { "Event", name }, { "AgentID", "1000002" },
    }
    for _, kv in ipairs(extra or {}) do
        fields[#fields + 1] = kv
    end
    return event_xml(fields)
end

local TEXT = event_xml {
    { "ToUserName", "wwDOWNSTREAM01" }, { "FromUserName", "zhangwei" }, { "CreateTime", "1700000001" },
    { "MsgType", "text" }, { "Content", "hello" }, { "MsgId", "42" }, { "AgentID", "1000002" },
}

local INFO = event_xml {
    { "SuiteId", "wwSUITE" }, { "InfoType", "share_chain_change" }, { "TimeStamp", "1403610513" },
    { "CorpId", "wwUPPER" }, { "AgentId", "11" },
}

describe("wecom.ngx.callback_handler in nginx", function()
    local t = callback_nginx.use(CONF, { token = TOKEN, aes_key = AES_KEY, receive_id = CORPID })

    -- the reply the handler sent, decrypted the way WeCom would
    local function open_reply(body)
        local fields
        if body:sub(1, 1) == "{" then
            local r = cjson.decode(body)
            fields = { msg_signature = r.msgsignature, timestamp = r.timestamp, nonce = r.nonce }
        else
            local x = assert(core.xml_decode(body))
            fields = { msg_signature = x.MsgSignature, timestamp = x.TimeStamp, nonce = x.Nonce }
        end
        return assert(t.cb:decrypt(fields, body))
    end

    describe("the URL check (GET)", function()
        it("answers 200 with exactly the decrypted echo: no newline, exact Content-Length", function()
            local query, echo = t.cb:encrypt_echostr()
            local status, body, headers = t.site:request("GET", "/cb?" .. callback.build_query(query))
            assert.equal(200, status)
            assert.equal(echo, body)
            assert.equal(tostring(#echo), headers["content-length"])
            assert.matches("^text/plain", headers["content-type"])
        end)

        it("keeps a raw '+' of echostr (not percent-encoded) as '+'", function()
            local query, echo
            repeat
                query, echo = t.cb:encrypt_echostr()
            until query.echostr:find("+", 1, true)
            local raw = "msg_signature=" .. query.msg_signature .. "&timestamp=" .. query.timestamp
                .. "&nonce=" .. query.nonce .. "&echostr=" .. query.echostr:gsub("/", "%%2F"):gsub("=", "%%3D")
            local status, body = t.site:request("GET", "/cb?" .. raw)
            assert.equal(200, status)
            assert.equal(echo, body)
        end)

        it("answers 403 to a bad signature or another receive id, 400 to the rest", function()
            local query = t.cb:encrypt_echostr()
            local bad = {}
            for k, v in pairs(query) do bad[k] = v end
            bad.nonce = bad.nonce .. "1"
            local status, body = t.site:request("GET", "/cb?" .. callback.build_query(bad))
            assert.equal(403, status)
            assert.equal("forbidden", body)

            local elsewhere = t.cb:encrypt_echostr(nil, { receive_id = "wwSOMEONEELSE" })
            assert.equal(403, (t.site:request("GET", "/cb?" .. callback.build_query(elsewhere))))

            -- signed correctly, but echostr is not base64: -40010
            local crypter = assert(core.crypter(TOKEN, AES_KEY))
            local q = { timestamp = "1700000000", nonce = "77", echostr = "not*base64" }
            q.msg_signature = crypter:signature(q.timestamp, q.nonce, q.echostr)
            crypter:close()
            status, body = t.site:request("GET", "/cb?" .. callback.build_query(q))
            assert.equal(400, status)
            assert.equal("bad request", body)

            assert.equal(400, (t.site:request("GET", "/cb?msg_signature=a&timestamp=1&nonce=2")))
        end)
    end)

    describe("events (POST)", function()
        it("dispatches and answers 200 with an empty body; the router sees the normalised fields", function()
            local status, body = t:post("/cb", app_event("share_chain_change"))
            assert.equal(200, status)
            assert.equal("", body)
            local seen = t:json("/last")
            assert.equal("share_chain_change", seen.type)
            assert.equal("wwDOWNSTREAM01", seen.corpid)
            assert.equal("sys", seen.userid)
            assert.equal(1000002, seen.agentid)
            assert.equal(1700000000, seen.time)
        end)

        it("encrypts a string the handler returns as the passive reply", function()
            local status, body, headers = t:post("/cb", TEXT)
            assert.equal(200, status)
            assert.matches("^application/xml", headers["content-type"])
            assert.matches("^<xml>\n<Encrypt>", body)
            assert.equal("re: hello", open_reply(body).Content)
        end)

        it("replies in JSON to the JSON variant", function()
            local status, body, headers = t:post("/cb", TEXT, { format = "json" })
            assert.equal(200, status)
            assert.matches("^application/json", headers["content-type"])
            local reply = open_reply(body)
            assert.equal("re: hello", reply.Content)
        end)

        it("sends no reply for an empty string or a non-string result", function()
            for _, name in ipairs { "empty_reply", "table_reply" } do
                local status, body = t:post("/cb", app_event(name))
                assert.equal(200, status)
                assert.equal("", body)
                assert.equal(name, t:json("/last").type)
            end
        end)

        it("lets a handler yield (ngx.sleep) inside the protected call", function()
            local status = t:post("/cb", app_event("slow"))
            assert.equal(200, status)
            assert.equal("slow", t:json("/last").type)
        end)

        it("answers 'success' to third-party command events, with or without a router", function()
            local status, body = t:post("/cb", INFO)
            assert.equal(200, status)
            assert.equal("success", body)
            local seen = t:json("/last")
            assert.equal("share_chain_change", seen.type)
            assert.equal("wwUPPER", seen.corpid)
            assert.equal(11, seen.agentid)
            status, body = t:post("/cb_bare", INFO)
            assert.equal(200, status)
            assert.equal("success", body)
            status, body = t:post("/cb_bare", app_event("subscribe"))
            assert.equal(200, status)
            assert.equal("", body)
        end)

        it("answers 500 without details when the handler raises or its reply cannot be sealed", function()
            for _, name in ipairs { "boom", "boom_table", "huge_reply" } do
                local status, body = t:post("/cb", app_event(name))
                assert.equal(500, status, name)
                assert.equal("internal error", body)
            end
            local log = t.site:log()
            -- the details go to error.log, at error level
            assert.truthy(log:find("[error]", 1, true))
            assert.truthy(log:find(HANDLER_ERROR, 1, true))
            assert.truthy(log:find("handler for event boom_table failed", 1, true))
            assert.truthy(log:find("could not be encrypted", 1, true))
        end)

        it("reads a body nginx buffered to a temporary file", function()
            local data = string.rep("0123456789", 30000)        -- 300 KB > client_body_buffer_size
            local status = t:post("/cb", app_event("big", { { "Data", data } }))
            assert.equal(200, status)
            local seen = t:json("/last")
            assert.equal("big", seen.type)
            assert.equal(#data, seen.size)
            assert.is_true(seen.file)
        end)

        it("refuses bodies over 1 MiB: nginx's 413 by default, 400 where nginx lets them through", function()
            local body, query = t.cb:encrypt_event(app_event("padded"))
            -- a correctly signed envelope, padded past 1 MiB
            local padded = body:gsub("</xml>$", "<Pad>" .. string.rep("p", 1024 * 1024) .. "</Pad></xml>")
            local qs = callback.build_query(query)
            assert.equal(413, (t.site:request("POST", "/cb?" .. qs, { body = padded })))
            local status, answer = t.site:request("POST", "/cb_big?" .. qs, { body = padded })
            assert.equal(400, status)
            assert.equal("bad request", answer)
            -- unpadded, the same request is fine
            assert.equal(200, (t.site:request("POST", "/cb_big?" .. qs, { body = body })))
        end)

        it("answers 403 to bad signatures and foreign receive ids, 400 to bad bodies", function()
            local body, query = t.cb:encrypt_event(app_event("share_chain_change"))
            local qs = callback.build_query(query)
            local tampered = body:gsub("<Encrypt><!%[CDATA%[(.)", function(c)
                return "<Encrypt><![CDATA[" .. (c == "A" and "B" or "A")
            end)
            assert.equal(403, (t.site:request("POST", "/cb?" .. qs, { body = tampered })))
            assert.equal(403, (t:post("/cb", app_event("x"), { receive_id = "wwSOMEONEELSE" })))
            assert.equal(403, (t.site:request("POST", "/cb", { body = body })))   -- no query at all
            for _, bad in ipairs { "", "<html><body>502 Bad Gateway</body></html>", "success",
                                   "<xml><Encrypt>x</Encrypt>", '{"encrypt":' } do
                local status, answer = t.site:request("POST", "/cb?" .. qs, { body = bad })
                assert.equal(400, status, bad)
                assert.equal("bad request", answer)
            end
        end)

        it("answers 405 with Allow to other methods", function()
            for _, method in ipairs { "PUT", "DELETE", "PATCH" } do
                local status, body, headers = t.site:request(method, "/cb", { body = "x" })
                assert.equal(405, status)
                assert.equal("method not allowed", body)
                assert.equal("GET, POST", headers.allow)
            end
        end)
    end)

    it("logs rejections at warn with the code, and never the token or key", function()
        local log = t.site:log()
        assert.truthy(log:find("%[warn%][^\n]*rejected POST %(403%)[^\n]*%-40001"))
        assert.truthy(log:find("%[warn%][^\n]*rejected GET %(403%)[^\n]*%-40005"))
        assert.is_nil(log:find(TOKEN, 1, true))
        assert.is_nil(log:find(AES_KEY, 1, true))
        assert.is_nil(log:find(AES_KEY:sub(1, 16), 1, true))
        -- the only error lines are the failures provoked above (nginx logs its
        -- own 413 at error level)
        assert.same({}, t.site:error_lines(function(line)
            return line:find("wecom callback: handler for event boom", 1, true)
                or line:find("wecom callback: reply to event huge_reply", 1, true)
                or line:find("client intended to send too large body", 1, true)
        end))
    end)
end)
