-- examples/openresty/nginx.conf in a real nginx (2 workers) against the
-- emulator over HTTPS (verification on: lua_ssl_trusted_certificate holds
-- the emulator's CA).

local cjson = require "cjson"
local emulator = require "helpers.emulator"
local nginx = require "helpers.nginx"

local callback = require "wecom.callback"

local function system_app(fx)
    return emulator.fixture_app(fx, true)
end

-- the settings the example reads from its environment
local function site_env(emu, fx)
    local app = system_app(fx)
    return {
        WECOM_CORPID = fx.upstream.corpid,
        WECOM_SECRET = app.secret,
        WECOM_AGENTID = tostring(app.agentid),
        -- the URL the emulator printed, unchanged (a host name: nginx verifies by DNS name)
        WECOM_BASE_URL = emu.base_url,
        WECOM_CALLBACK_TOKEN = app.callback.token,
        WECOM_CALLBACK_AES_KEY = app.callback.aes_key,
    }, app
end

local function start_site(emu, fx, opts)
    local env = site_env(emu, fx)
    return nginx.start {
        conf = nginx.example { workers = opts.workers, trusted = emu.dir .. "/trusted.pem",
            warmup = opts.warmup },
        env = env,
    }
end

local function assert_no_errors(site, expected)
    assert.same({}, site:error_lines(expected and function(line) return line:find(expected, 1, true) end))
end

describe("examples/openresty/nginx.conf", function()
    local emu, fx

    setup(function()
        emu = emulator.new {}
        fx = emu:fixture()
    end)

    teardown(function()
        if emu then
            emu:stop()
        end
    end)

    describe("with 2 workers and a cold token", function()
        local site

        before_each(function()
            emu:reset()
            site = start_site(emu, fx, { workers = 2, warmup = false })
        end)

        after_each(function()
            site:stop()
        end)

        it("serves 200 concurrent API-calling requests with exactly one gettoken", function()
            local results = site:parallel_get("/admin/chains", 200)
            assert.equal(200, #results)
            for i = 1, 200 do
                assert.equal(200, results[i].status)
                local data = cjson.decode(results[i].body)
                assert.is_table(data.chains)
                assert.is_true(#data.chains > 0)
                assert.is_string(data.chains[1].chain_id)
            end
            assert.equal(1, emu:calls("/cgi-bin/gettoken"))
            assert.equal(200, emu:calls("/cgi-bin/corpgroup/corp/get_chain_list"))
            assert_no_errors(site)
        end)

        it("lists shared corps, fanning out over downstream tokens", function()
            local status, body = site:request("GET", "/admin/shared_corps?business_type=1&details=1")
            assert.equal(200, status)
            local data = cjson.decode(body)
            assert.is_true(data.count > 1)
            for _, corp in ipairs(data.corps) do
                assert.is_string(corp.corpid)
                assert.is_nil(corp.error)
                assert.is_string(corp.agent_name)
            end
            assert.equal(1, emu:calls("/cgi-bin/gettoken"))
            assert.equal(data.count, emu:calls("/cgi-bin/corpgroup/corp/gettoken"))
            assert_no_errors(site)
        end)

        it("answers an API failure with a JSON error and no secret", function()
            emu:fault { path = "/cgi-bin/corpgroup/corp/get_chain_list", count = 1, errcode = 60011 }
            local status, body = site:request("GET", "/admin/chains")
            assert.equal(500, status)
            local data = cjson.decode(body)
            assert.equal("api", data.error)
            assert.equal(60011, data.errcode)
            local app = system_app(fx)
            assert.is_nil(site:log():find(app.secret, 1, true))
            assert_no_errors(site)
        end)
    end)

    describe("with 1 worker and 200 ms of emulator latency", function()
        local site

        setup(function()
            emu:reset()
            site = start_site(emu, fx, { workers = 1, warmup = false })
        end)

        teardown(function()
            emu:latency(0)
            site:stop()
        end)

        it("finishes 50 concurrent requests in well under 50 x 200 ms", function()
            emu:latency(200)
            -- warm the token: this one pays for gettoken too
            assert.equal(200, (site:request("GET", "/admin/chains")))
            local results, elapsed = site:parallel_get("/admin/chains", 50)
            assert.equal(50, #results)
            for i = 1, 50 do
                assert.equal(200, results[i].status)
            end
            -- serialised, they would take 10 s; overlapped, about 0.2 s (the
            -- < 1 s bar itself is measured by bench/openresty.lua)
            assert.is_true(elapsed < 5, "50 requests took " .. elapsed .. " s")
            assert.equal(1, emu:calls("/cgi-bin/gettoken"))
            assert_no_errors(site)
        end)
    end)

    describe("as it is (token warm-up in init_worker)", function()
        local site, app

        setup(function()
            emu:reset()
            site = start_site(emu, fx, { workers = 2 })
            app = system_app(fx)
        end)

        teardown(function()
            site:stop()
        end)

        it("fetches the token from a timer at start, once for both workers", function()
            local n = 0
            for _ = 1, 100 do
                n = emu:calls("/cgi-bin/gettoken")
                if n > 0 then
                    break
                end
                os.execute("sleep 0.05")
            end
            assert.equal(1, n)
            assert.equal(200, (site:request("GET", "/admin/chains")))
            assert.equal(200, (site:request("GET", "/admin/chains")))
            assert.equal(1, emu:calls("/cgi-bin/gettoken"))
            assert_no_errors(site)
        end)

        it("passes WeCom's URL check pushed by the emulator", function()
            local answer = emu:push { url = site:url("/wecom/callback"), verify = true, attempts = 1 }
            assert.equal(200, answer.status)
            assert.equal(answer.echostr, answer.body)
        end)

        it("receives a pushed event, runs the router and answers 200 with an empty body", function()
            local answer = emu:push { url = site:url("/wecom/callback"), event = "share_chain_change",
                attempts = 1 }
            assert.equal(200, answer.status)
            assert.equal("", answer.body)
            local status, body = site:request("GET", "/admin/events")
            assert.equal(200, status)
            local events = cjson.decode(body)
            assert.equal(1, events.counts.share_chain_change)
            assert.equal("share_chain_change", events.last.type)
            assert.equal(fx.upstream.corpid, events.last.corpid)
        end)

        it("answers a text message with an encrypted passive reply", function()
            local xml = "<xml><ToUserName><![CDATA[" .. fx.upstream.corpid .. "]]></ToUserName>"
                .. "<FromUserName><![CDATA[zhangwei]]></FromUserName><CreateTime>1700000000</CreateTime>"
                .. "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content>"
                .. "<MsgId>1</MsgId><AgentID>" .. app.agentid .. "</AgentID></xml>"
            local answer = emu:push { url = site:url("/wecom/callback"), xml = xml, attempts = 1 }
            assert.equal(200, answer.status)
            local cb = callback.new { token = app.callback.token, aes_key = app.callback.aes_key,
                receive_id = fx.upstream.corpid }
            local sig = answer.body:match("<MsgSignature><!%[CDATA%[(%x+)%]%]></MsgSignature>")
            local ts = answer.body:match("<TimeStamp>(%d+)</TimeStamp>")
            local nonce = answer.body:match("<Nonce><!%[CDATA%[([^%]]+)%]%]></Nonce>")
            assert.is_string(sig)
            local reply, err = cb:decrypt({ msg_signature = sig, timestamp = ts, nonce = nonce }, answer.body)
            assert.is_nil(err)
            assert.equal("text", reply.type)
            assert.equal("zhangwei", reply.ToUserName)
            assert.equal("received", reply.Content)
            cb:close()
        end)

        it("answers third-party command events with 'success'", function()
            local xml = "<xml><SuiteId><![CDATA[wwSUITE]]></SuiteId><InfoType><![CDATA[share_agent_change]]>"
                .. "</InfoType><TimeStamp>1403610513</TimeStamp><CorpId><![CDATA[" .. fx.upstream.corpid
                .. "]]></CorpId><AgentId>11</AgentId></xml>"
            local answer = emu:push { url = site:url("/wecom/callback"), xml = xml, attempts = 1 }
            assert.equal(200, answer.status)
            assert.equal("success", answer.body)
        end)

        it("refuses a push signed with another app's token (403) and logs it at warn", function()
            local other = emulator.fixture_app(fx, false)
            local answer = emu:push { url = site:url("/wecom/callback"), agentid = other.agentid,
                event = "share_chain_change", attempts = 1 }
            assert.equal(403, answer.status)
            assert.equal("forbidden", answer.body)
            assert.truthy(site:log():find("[warn]", 1, true))
            assert.truthy(site:log():find("-40001", 1, true))
            assert.is_nil(site:log():find(other.callback.token, 1, true))
            assert.is_nil(site:log():find(app.callback.aes_key, 1, true))
        end)

        it("refuses a push for another receive id (403)", function()
            local answer = emu:push { url = site:url("/wecom/callback"), event = "share_chain_change",
                receive_id = "wwSOMEONEELSE", attempts = 1 }
            assert.equal(403, answer.status)
        end)

        it("answers 400 to bodies that are not callbacks and 405 to other methods", function()
            local status, body = site:request("POST", "/wecom/callback?msg_signature=x&timestamp=1&nonce=2",
                { body = "<html>nope</html>" })
            assert.equal(400, status)
            assert.equal("bad request", body)
            status = site:request("GET", "/wecom/callback")
            assert.equal(400, status)
            local headers
            status, body, headers = site:request("PUT", "/wecom/callback", { body = "x" })
            assert.equal(405, status)
            assert.equal("method not allowed", body)
            assert.equal("GET, POST", headers.allow)
        end)

        it("left no error lines in error.log", function()
            assert_no_errors(site)
        end)
    end)
end)
