-- /__emulator/push against a separate receiver nginx started by this spec.
-- The receiver echoes what it got; the spec checks the signature with the
-- openssl CLI's sha1 and decrypts with `openssl enc`, independently of the
-- C core the emulator encrypts with.

local emu = require "helpers.emulator"
local nginx = require "helpers.nginx"
local cjson = require "cjson"

local shell = require "helpers.sh"
local sh, write = shell.capture, shell.write_file

-- A plain-HTTP receiver in its own nginx.
local RECEIVER = nginx.conf {
    dicts = { hits = "1m" },
    servers = { { text = nginx.echo_location("/hook") .. [[
        location /flaky {
            content_by_lua_block {
                local n = ngx.shared.hits:incr("flaky", 1, 0)
                if n < 3 then
                    ngx.status = 500
                    ngx.say("not yet")
                    return
                end
                ngx.print("success")
            }
        }
        location /down { return 503; }
        location /slow {
            content_by_lua_block {
                ngx.sleep(2)
                ngx.print("late")
            }
        }
        # keeps every delivery; /recorded hands them back as a JSON list
        location /record {
            content_by_lua_block {
                local cjson = require "cjson"
                ngx.req.read_body()
                local n = ngx.shared.hits:incr("recorded", 1, 0)
                ngx.shared.hits:set("rec:" .. n, cjson.encode({ args = ngx.req.get_uri_args(),
                    body = ngx.req.get_body_data() or "" }))
                ngx.print("success")
            }
        }
        location /recorded {
            content_by_lua_block {
                local list = {}
                for i = 1, ngx.shared.hits:get("recorded") or 0 do
                    list[i] = ngx.shared.hits:get("rec:" .. i)
                end
                ngx.print("[" .. table.concat(list, ",") .. "]")
            }
        }
]] } },
}

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64decode(s)
    s = s:gsub("[^%w%+/]", "")
    local bits = s:gsub(".", function(c)
        local v = B64:find(c, 1, true) - 1
        local out = ""
        for i = 5, 0, -1 do
            out = out .. (math.floor(v / 2 ^ i) % 2)
        end
        return out
    end)
    bits = bits:sub(1, #bits - #bits % 8)
    return (bits:gsub("%d%d%d%d%d%d%d%d", function(byte)
        return string.char(tonumber(byte, 2))
    end))
end

local function hex(s)
    return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function sha1(s)
    local tmp = os.tmpname()
    write(tmp, s)
    local out = sh("openssl dgst -sha1 -r " .. tmp)
    os.remove(tmp)
    return out:match("^(%x+)")
end

-- WXBizMsgCrypt decrypt with the openssl CLI: -> msg, receive_id
local function decrypt(aes_key, encrypted)
    local key = b64decode(aes_key .. "=")
    assert(#key == 32)
    local tmp = os.tmpname()
    write(tmp, b64decode(encrypted))
    local plain = sh("openssl enc -d -aes-256-cbc -nopad -K " .. hex(key) .. " -iv " .. hex(key:sub(1, 16))
        .. " -in " .. tmp)
    os.remove(tmp)
    local pad = plain:byte(#plain)
    assert(pad >= 1 and pad <= 32, "bad padding")
    plain = plain:sub(1, #plain - pad)
    local b1, b2, b3, b4 = plain:byte(17, 20)
    local len = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    return plain:sub(21, 20 + len), plain:sub(21 + len)
end

local function cdata(xml, name)
    return xml:match("<" .. name .. "><!%[CDATA%[(.-)%]%]></" .. name .. ">")
        or xml:match("<" .. name .. ">(.-)</" .. name .. ">")
end

describe("emulator push", function()
    local fx, system, ordinary, site, receiver

    -- the tests reset the emulator where they need to
    emu.hooks(function(f, s, o)
        fx, system, ordinary = f, s, o
        site = nginx.start { conf = RECEIVER }
        receiver = { url = site:url("") }
    end, { reset = false })

    teardown(function()
        if site then site:stop() end
    end)

    local function signature_of(app, args, encrypt)
        local parts = { app.callback.token, args.timestamp, args.nonce, encrypt }
        table.sort(parts)
        return sha1(table.concat(parts))
    end

    it("POSTs an encrypted, signed event like WeCom and returns the receiver's answer", function()
        local answer = emu.push { url = receiver.url .. "/hook?app=chain", event = "share_chain_change" }
        assert.is_true(answer.ok)
        assert.equal(200, answer.status)
        assert.equal(1, answer.attempts)
        local got = cjson.decode(answer.body)
        assert.equal("POST", got.method)
        assert.equal("chain", got.args.app)
        local encrypt = cdata(got.body, "Encrypt")
        assert.equal(fx.upstream.corpid, cdata(got.body, "ToUserName"))
        assert.equal(signature_of(system, got.args, encrypt), got.args.msg_signature)
        assert.equal(answer.msg_signature, got.args.msg_signature)
        local msg, receive_id = decrypt(system.callback.aes_key, encrypt)
        assert.equal(fx.upstream.corpid, receive_id)
        assert.equal("share_chain_change", cdata(msg, "Event"))
        assert.equal("event", cdata(msg, "MsgType"))
        assert.equal("sys", cdata(msg, "FromUserName"))
        assert.equal(tostring(math.floor(system.agentid)), cdata(msg, "AgentID"))
        assert.is_true(math.abs(tonumber(cdata(msg, "CreateTime")) - os.time()) < 60)
    end)

    it("uses the chosen app's callback settings, extra fields and the emulator clock", function()
        emu.advance(86400)
        local answer = emu.push { url = receiver.url .. "/hook", agentid = ordinary.agentid,
            event = "batch_job_result", to_user = "wwDOWNCORP01", fields = { JobId = "job42" } }
        local got = cjson.decode(answer.body)
        local encrypt = cdata(got.body, "Encrypt")
        assert.equal(signature_of(ordinary, got.args, encrypt), got.args.msg_signature)
        assert.not_equal(signature_of(system, got.args, encrypt), got.args.msg_signature)
        local msg = decrypt(ordinary.callback.aes_key, encrypt)
        assert.equal("wwDOWNCORP01", cdata(msg, "ToUserName"))
        assert.equal("job42", cdata(msg, "JobId"))
        assert.is_true(tonumber(cdata(msg, "CreateTime")) > os.time() + 86000)
        emu.reset()
    end)

    it("sends raw plaintext XML as given", function()
        local xml = "<xml><ToUserName><![CDATA[wwDOWNCORP02]]></ToUserName><MsgType><![CDATA[text]]></MsgType>"
            .. "<Content><![CDATA[你好]]></Content></xml>"
        local got = cjson.decode(emu.push { url = receiver.url .. "/hook", xml = xml }.body)
        assert.equal(xml, (decrypt(system.callback.aes_key, cdata(got.body, "Encrypt"))))
    end)

    it("runs the GET URL check with an encrypted echostr", function()
        local answer = emu.push { url = receiver.url .. "/hook", verify = true, echostr = "1616140317555161061" }
        local got = cjson.decode(answer.body)
        assert.equal("GET", got.method)
        assert.equal(signature_of(system, got.args, got.args.echostr), got.args.msg_signature)
        assert.equal("1616140317555161061", (decrypt(system.callback.aes_key, got.args.echostr)))
        assert.equal("1616140317555161061", answer.echostr)
    end)

    it("retries up to 3 times on non-200 answers", function()
        local flaky = emu.push { url = receiver.url .. "/flaky", event = "change_chain" }
        assert.equal(3, flaky.attempts)
        assert.equal(200, flaky.status)
        assert.equal("success", flaky.body)
        local down = emu.push { url = receiver.url .. "/down", event = "change_chain" }
        assert.equal(3, down.attempts)
        assert.equal(503, down.status)
        assert.is_false(down.ok)
        local once = emu.push { url = receiver.url .. "/down", event = "change_chain", attempts = 1 }
        assert.equal(1, once.attempts)
    end)

    it("retries on a timeout, each attempt waiting timeout_ms", function()
        local answer = emu.push { url = receiver.url .. "/slow", event = "change_chain",
            attempts = 2, timeout_ms = 200 }
        assert.equal(2, answer.attempts)
        assert.is_false(answer.ok)
        assert.is_nil(answer.status)
        assert.matches("timeout", answer.error)
    end)

    it("reports a receiver that cannot be reached", function()
        local answer = emu.push { url = "http://127.0.0.1:1/hook", event = "x", attempts = 1 }
        assert.is_false(answer.ok)
        assert.is_nil(answer.status)
        assert.matches("connect", answer.error)
    end)

    describe("batch_job_result", function()
        local P = "/cgi-bin/corpgroup/"
        local contact = { corp_name = "推送测试商贸", contact_info_list = {
            { name = "周八", identity_type = 1, mobile = "13912340000" } } }

        -- what the receiver's /record got so far
        local function recorded()
            return cjson.decode(sh("curl -s " .. receiver.url .. "/recorded"))
        end

        -- waits (polling) until the receiver holds n deliveries
        local function wait_recorded(n)
            for _ = 1, 100 do
                local list = recorded()
                if #list >= n then
                    return list
                end
                os.execute("sleep 0.05")
            end
            return recorded()
        end

        local function import(token)
            local _, d = emu.api("POST", P .. "import_chain_contact", token,
                { chain_id = "ChDISTRIB01", contact_list = { contact } })
            assert.equal(0, d.errcode)
            return d.jobid
        end

        before_each(function()
            emu.reset()
        end)

        it("is pushed to the importing app's callback URL when the job finishes", function()
            local before = #recorded()
            local set = emu.request("POST", "/__emulator/callback_url",
                { body = { agentid = system.agentid, url = receiver.url .. "/record" } })
            assert.equal(200, set)
            emu.options { job_seconds = 50 }
            local token = emu.app_token(system.agentid)
            local jobid = import(token)
            local _, pending = emu.request("GET", "/__emulator/pushes")
            assert.same({}, pending.pushes) -- not finished yet
            emu.advance(60)                  -- due now: finished and pushed without a getresult
            local list = wait_recorded(before + 1)
            assert.equal(before + 1, #list)
            local got = list[#list]
            local encrypt = cdata(got.body, "Encrypt")
            assert.equal(signature_of(system, got.args, encrypt), got.args.msg_signature)
            local msg, receive_id = decrypt(system.callback.aes_key, encrypt)
            assert.equal(fx.upstream.corpid, receive_id)
            assert.equal("batch_job_result", cdata(msg, "Event"))
            assert.equal("event", cdata(msg, "MsgType"))
            assert.equal("sys", cdata(msg, "FromUserName"))
            assert.equal(fx.upstream.corpid, cdata(msg, "ToUserName"))
            assert.equal(jobid, cdata(msg, "JobId"))
            assert.equal("import_chain_contact", cdata(msg, "JobType"))
            assert.equal("0", cdata(msg, "ErrCode"))
            assert.equal("ok", cdata(msg, "ErrMsg"))
            -- exactly once, and logged
            local _, r = emu.api("GET", P .. "getresult", token, { jobid = jobid })
            assert.equal(3, r.status)
            local _, log = emu.request("GET", "/__emulator/pushes")
            assert.equal(1, #log.pushes)
            assert.same({ event = "batch_job_result", agentid = system.agentid, url = receiver.url .. "/record",
                status = 200, attempts = 1, ok = true }, log.pushes[1])
            assert.equal(before + 1, #recorded())
        end)

        it("finishes on the real clock too, with nobody asking", function()
            local before = #recorded()
            emu.request("POST", "/__emulator/callback_url",
                { body = { agentid = system.agentid, url = receiver.url .. "/record" } })
            emu.options { job_seconds = 0 }
            local jobid = import(emu.app_token(system.agentid))
            local list = wait_recorded(before + 1)
            assert.equal(jobid, cdata(decrypt(system.callback.aes_key, cdata(list[#list].body, "Encrypt")), "JobId"))
        end)

        it("is not pushed without a callback URL, and reset forgets the URL", function()
            emu.request("POST", "/__emulator/callback_url",
                { body = { agentid = system.agentid, url = receiver.url .. "/record" } })
            emu.reset()
            emu.options { job_seconds = 0 }
            local token = emu.app_token(system.agentid)
            local jobid = import(token)
            local _, r = emu.api("GET", P .. "getresult", token, { jobid = jobid })
            assert.equal(3, r.status)
            local _, log = emu.request("GET", "/__emulator/pushes")
            assert.same({}, log.pushes)
        end)

        it("refuses bad callback_url requests with HTTP 400", function()
            local function status_of(body)
                return (emu.request("POST", "/__emulator/callback_url", { body = body }))
            end
            assert.equal(400, status_of { agentid = 42, url = receiver.url })
            assert.equal(400, status_of { agentid = system.agentid, url = "ftp://x" })
            assert.equal(200, status_of { agentid = system.agentid, url = "" })
        end)
    end)

    it("refuses bad push requests with HTTP 400", function()
        local function status_of(body)
            return (emu.request("POST", "/__emulator/push", { body = body }))
        end
        assert.equal(400, status_of { event = "x" })
        assert.equal(400, status_of { url = "ftp://x", event = "x" })
        assert.equal(400, status_of { url = receiver.url, event = "x", xml = "<xml/>" })
        assert.equal(400, status_of { url = receiver.url, event = "x", agentid = 42 })
        assert.equal(400, status_of { url = receiver.url, event = "x", attempts = 9 })
    end)
end)
