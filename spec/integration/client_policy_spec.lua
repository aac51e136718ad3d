-- The retry policy where it is easy to get wrong: downstream tokens, tickets,
-- token responses that must not be cached, error fields on every path and
-- credentials echoed back by the server.
local wecom = require "wecom"
local token = require "wecom.token"
local emu = require "helpers.emulator"

local READ_PATH = "/cgi-bin/agent/get"
local GETTOKEN = "/cgi-bin/gettoken"
local DOWN_GETTOKEN = "/cgi-bin/corpgroup/corp/gettoken"
local JSAPI_TICKET = "/cgi-bin/get_jsapi_ticket"
local AGENT_TICKET = "/cgi-bin/ticket/get"

describe("client policy against the emulator", function()
    local env, fixture, app_def, corp

    local function forget_tickets(client)
        for _, kind in ipairs { "jsapi", "agent_config" } do
            client.store:delete(token.ticket_key(client.token_key, kind))
        end
    end

    local function fresh_app(extra)
        local app = wecom.new(emu.app_options(env, fixture, app_def, { backoff = 0.01, retries = 2 }, extra))
        app.store:delete(app.token_key)
        forget_tickets(app)
        return app
    end

    local function fresh_down(app)
        local down = app:downstream { corpid = corp.corpid, agentid = corp.agentid, business_type = 1 }
        down.store:delete(down.token_key)
        forget_tickets(down)
        return down
    end

    emu.hooks(function(fx, _, _, info)
        env, fixture, app_def = info, fx, fx.upstream.apps[1]
        local app = fresh_app()
        local list = assert(app:post("/cgi-bin/corpgroup/corp/list_app_share_info",
            { agentid = app.agentid, business_type = 1 }, nil, { idempotent = true }))
        corp = list.corp_list[1]
    end)

    -- a read through a fresh downstream client after emu.fault(fault): it
    -- fails as kind token with the fault's errcode
    local function failed_down_read(fault)
        local down = fresh_down(fresh_app())
        emu.fault(fault)
        local data, err = down:get(READ_PATH, { agentid = corp.agentid })
        assert.is_nil(data)
        assert.equal("token", err.kind)
        assert.equal(fault.errcode, err.errcode)
        return err
    end

    describe("downstream tokens", function()
        for _, code in ipairs { 40001, 40014, 42001 } do
            it(code .. " on a downstream call refreshes the downstream token, not the upstream one", function()
                local app = fresh_app()
                local down = fresh_down(app)
                local old = assert(down:token())
                emu.fault { path = READ_PATH, errcode = code }
                local data, err = down:get(READ_PATH, { agentid = corp.agentid })
                assert.is_nil(err)
                assert.equal(corp.agentid, data.agentid)
                assert.equal(2, emu.calls(DOWN_GETTOKEN))
                assert.equal(1, emu.calls(GETTOKEN))
                assert.equal(2, emu.calls(READ_PATH))
                assert.is_string(old)
            end)
        end

        it("gives up after one refresh when the new downstream token is rejected too", function()
            failed_down_read { path = READ_PATH, errcode = 42001, count = 5 }
            assert.equal(2, emu.calls(READ_PATH))
            assert.equal(2, emu.calls(DOWN_GETTOKEN))
        end)

        it("corp/gettoken rejecting the upstream token twice fails as kind token, without a loop", function()
            local err = failed_down_read { path = DOWN_GETTOKEN, errcode = 40014, count = 10 }
            assert.equal("POST", err.method)
            assert.equal(DOWN_GETTOKEN, err.path)
            assert.equal(2, emu.calls(DOWN_GETTOKEN))
            assert.equal(2, emu.calls(GETTOKEN))
            assert.equal(0, emu.calls(READ_PATH))
        end)
    end)

    describe("tickets", function()
        it("a ticket fetch rejected with 40014 refreshes the app token, then the ticket is fetched", function()
            local app = fresh_app()
            local tok = assert(app:token())
            emu.fault { path = JSAPI_TICKET, errcode = 40014 }
            local ticket = assert(app:ticket("jsapi"))
            assert.equal(2, emu.calls(GETTOKEN))
            assert.equal(2, emu.calls(JSAPI_TICKET))
            assert.is_string(tok)
            assert.equal(ticket, (app:ticket("jsapi")))
            assert.equal(2, emu.calls(JSAPI_TICKET))
        end)

        it("a downstream ticket fetch rejected with 42001 refreshes the downstream token", function()
            local app = fresh_app()
            local down = fresh_down(app)
            assert(down:token())
            emu.fault { path = AGENT_TICKET, errcode = 42001 }
            local ticket = assert(down:ticket("agent_config"))
            assert.is_string(ticket)
            assert.equal(2, emu.calls(DOWN_GETTOKEN))
            assert.equal(1, emu.calls(GETTOKEN))
            assert.equal(2, emu.calls(AGENT_TICKET))
        end)

        it("a ticket fetch that keeps failing is not cached and fails the next time too", function()
            local app = fresh_app()
            emu.fault { path = JSAPI_TICKET, errcode = 40014, count = 2 }
            local ticket, err = app:ticket("jsapi")
            assert.is_nil(ticket)
            assert.equal("token", err.kind)
            assert.equal(JSAPI_TICKET, err.path)
            assert.equal(2, emu.calls(JSAPI_TICKET))
            assert.is_string((app:ticket("jsapi")))
            assert.equal(3, emu.calls(JSAPI_TICKET))
        end)

        for _, body in ipairs {
            '{"errcode":0,"errmsg":"ok","expires_in":7200}',
            '{"errcode":0,"errmsg":"ok","ticket":"","expires_in":7200}',
            '{"errcode":0,"errmsg":"ok","ticket":"T","expires_in":"soon"}',
            '{"errcode":0,"errmsg":"ok","ticket":"T","expires_in":-1}',
        } do
            it("a ticket answer " .. body .. " is a decode error and not cached", function()
                local app = fresh_app()
                emu.fault { path = JSAPI_TICKET, body = body }
                local ticket, err = app:ticket("jsapi")
                assert.is_nil(ticket)
                assert.equal("decode", err.kind)
                assert.equal("GET", err.method)
                assert.equal(JSAPI_TICKET, err.path)
                assert.equal(200, err.http_status)
                local real = assert(app:ticket("jsapi"))
                assert.not_equal("T", real)
                assert.equal(2, emu.calls(JSAPI_TICKET))
            end)
        end
    end)

    describe("token answers that must not be cached", function()
        for _, body in ipairs {
            '{"errcode":0,"errmsg":"ok","expires_in":7200}',
            '{"errcode":0,"errmsg":"ok","access_token":"","expires_in":7200}',
            '{"errcode":0,"errmsg":"ok","access_token":42,"expires_in":7200}',
            '{"errcode":0,"errmsg":"ok","access_token":"BOGUS"}',
            '{"errcode":0,"errmsg":"ok","access_token":"BOGUS","expires_in":"7200"}',
            '{"errcode":0,"errmsg":"ok","access_token":"BOGUS","expires_in":"soon"}',
            '{"errcode":0,"errmsg":"ok","access_token":"BOGUS","expires_in":86401}',
            '{"errcode":0,"errmsg":"ok","access_token":"BOGUS","expires_in":-7200}',
            '{"errcode":0,"errmsg":"ok","access_token":"BOGUS","expires_in":1e300}',
            '[{"access_token":"BOGUS","expires_in":7200}]',
        } do
            it("gettoken answering " .. body .. " is a decode error; the next call fetches again", function()
                local app = fresh_app()
                emu.fault { path = GETTOKEN, body = body }
                local tok, err = app:token()
                assert.is_nil(tok)
                assert.equal("decode", err.kind)
                assert.equal("GET", err.method)
                assert.equal(GETTOKEN, err.path)
                assert.equal(200, err.http_status)
                assert.is_false(err.retryable)
                assert.not_matches("BOGUS", tostring(err), 1, true)
                tok = assert(app:token())
                assert.not_equal("BOGUS", tok)
                assert.equal(2, emu.calls(GETTOKEN))
            end)
        end

        it("corp/gettoken without access_token is a decode error and not cached", function()
            local app = fresh_app()
            local down = fresh_down(app)
            emu.fault { path = DOWN_GETTOKEN, body = '{"errcode":0,"errmsg":"ok","expires_in":7200}' }
            local tok, err = down:token()
            assert.is_nil(tok)
            assert.equal("decode", err.kind)
            assert.equal("POST", err.method)
            assert.equal(DOWN_GETTOKEN, err.path)
            assert(down:token())
            assert.equal(2, emu.calls(DOWN_GETTOKEN))
        end)
    end)

    describe("error objects", function()
        -- every field DESIGN names, with the right types, on every path
        local function check_fields(err, kind, method, path, status)
            assert.is_true(wecom.is_error(err))
            assert.equal(kind, err.kind)
            assert.equal(method, err.method)
            assert.equal(path, err.path)
            assert.equal(status, err.http_status)
            assert.is_boolean(err.retryable)
            assert.is_string(err.errmsg)
            local line = tostring(err)
            assert.not_matches("\n", line, 1, true)
            assert.matches(kind, line, 1, true)
            assert.matches(path, line, 1, true)
        end

        it("api, busy, rate_limit, token, decode, transport, timeout and tls all carry them", function()
            local app = fresh_app { retries = 0 }
            assert(app:token())
            local q = { agentid = app.agentid }
            local cases = {
                { { errcode = 60011 }, "api", 200 },
                { { errcode = -1 }, "busy", 200 },
                { { errcode = 45009 }, "rate_limit", 200 },
                { { errcode = 41001, count = 2 }, "token", 200 },  -- refreshed once, then given up
                { { body = "<html>gateway</html>" }, "decode", 200 },
                { { http_status = 503 }, "transport", 503 },
                { { body = "{}", http_status = 404 }, "transport", 404 },
            }
            for _, c in ipairs(cases) do
                local fault = c[1]
                fault.path = READ_PATH
                emu.fault(fault)
                local data, err = app:get(READ_PATH, q)
                assert.is_nil(data)
                check_fields(err, c[2], "GET", READ_PATH, c[3])
                if fault.errcode then assert.equal(fault.errcode, err.errcode) end
            end

            emu.fault { path = READ_PATH, delay_ms = 800 }
            local _, err = app:get(READ_PATH, q, { timeout = 0.2 })
            check_fields(err, "timeout", "GET", READ_PATH, nil)

            local refused = wecom.new(emu.app_options(env, fixture, app_def,
                { base_url = "https://127.0.0.1:1", retries = 0 }))
            refused.store:delete(refused.token_key)
            _, err = refused:token()
            check_fields(err, "transport", "GET", GETTOKEN, nil)
            assert.is_true(err.retryable)

            local untrusted = wecom.new { corpid = fixture.upstream.corpid, secret = app_def.secret,
                agentid = app_def.agentid, base_url = env.base_url, retries = 0 }
            untrusted.store:delete(untrusted.token_key)
            _, err = untrusted:token()
            check_fields(err, "tls", "GET", GETTOKEN, nil)
        end)
    end)

    describe("credentials echoed by the server", function()
        local function assert_clean(err, ...)
            local line = tostring(err)
            for i = 1, select("#", ...) do
                local secret = select(i, ...)
                assert.not_matches(secret, line, 1, true)
                assert.not_matches(secret, err.errmsg, 1, true)
                assert.not_matches(require("wecom.url").escape(secret), line, 1, true)
            end
        end

        it("an errmsg quoting the request URL loses its access_token", function()
            local app = fresh_app { retries = 0 }
            local tok = assert(app:token())
            emu.fault { path = READ_PATH, errcode = 60011,
                errmsg = "denied for " .. env.base_url .. READ_PATH .. "?access_token=" .. tok .. "&agentid=1" }
            local _, err = app:get(READ_PATH, { agentid = app.agentid })
            assert.equal(60011, err.errcode)
            assert_clean(err, tok)
            assert.matches("denied for", err.errmsg, 1, true)
        end)

        it("an errmsg quoting a token other than the one sent is cleaned too", function()
            local app = fresh_app { retries = 0 }
            assert(app:token())
            emu.fault { path = READ_PATH, errcode = 60011, errmsg = 'bad "access_token":"OTHER-TOKEN-123"' }
            local _, err = app:get(READ_PATH, { agentid = app.agentid })
            assert_clean(err, "OTHER-TOKEN-123")
            emu.fault { path = READ_PATH, errcode = 60011, errmsg = "url ?access_token=OTHER-TOKEN-456 rejected" }
            _, err = app:get(READ_PATH, { agentid = app.agentid })
            assert_clean(err, "OTHER-TOKEN-456")
        end)

        it("a gettoken errmsg quoting the secret loses it", function()
            local app = fresh_app()
            emu.fault { path = GETTOKEN, errcode = 40001,
                errmsg = "invalid corpsecret=" .. app_def.secret .. " (" .. app_def.secret .. ")" }
            local _, err = app:token()
            assert.equal("token", err.kind)
            assert_clean(err, app_def.secret)
        end)

        it("an errmsg quoting the secret on a call other than gettoken loses it", function()
            local app = fresh_app { retries = 0 }
            assert(app:token())
            local secret = app_def.secret
            for _, msg in ipairs {
                "echo " .. secret .. " end",
                "bad corpsecret=" .. secret .. " here",
                "escaped " .. emu.urlencode(secret .. "/+ ") .. " too",
            } do
                emu.fault { path = READ_PATH, errcode = 60011, errmsg = msg }
                local _, err = app:get(READ_PATH, { agentid = app.agentid })
                assert.equal(60011, err.errcode)
                assert_clean(err, secret)
            end
            local down = fresh_down(app)
            assert(down:token())
            emu.fault { path = READ_PATH, errcode = 60011, errmsg = "upstream secret " .. secret }
            local _, err = down:get(READ_PATH, { agentid = corp.agentid })
            assert_clean(err, secret)
        end)

        it("a downstream call's errmsg quoting either token loses both", function()
            local app = fresh_app { retries = 0 }
            local down = fresh_down(app)
            local up_tok, down_tok = assert(app:token()), assert(down:token())
            emu.fault { path = READ_PATH, errcode = 60011, errmsg = "tokens " .. down_tok .. " " .. up_tok }
            local _, err = down:get(READ_PATH, { agentid = corp.agentid })
            assert.equal(60011, err.errcode)
            assert_clean(err, down_tok, up_tok)
            emu.fault { path = DOWN_GETTOKEN, errcode = 60011, errmsg = "upstream " .. up_tok }
            down.store:delete(down.token_key)
            _, err = down:token()
            assert_clean(err, up_tok)
        end)
    end)

    describe("server text in errors", function()
        it("a CR/LF in errmsg cannot forge a log line", function()
            local app = fresh_app { retries = 0 }
            emu.fault { path = READ_PATH, errcode = 60011, errmsg = "bad field\r\nFORGED LOG LINE" }
            local _, err = app:get(READ_PATH, { agentid = app.agentid })
            assert.equal(60011, err.errcode)
            local line = tostring(err)
            assert.not_matches("[\r\n]", line)
            assert.not_matches("[\r\n]", err.errmsg)
            assert.matches("FORGED LOG LINE", line, 1, true)
        end)

        it("a 4 MB errmsg makes a small error", function()
            local app = fresh_app { retries = 0 }
            emu.fault { path = READ_PATH, errcode = 60011, errmsg = string.rep("x", 4 * 1024 * 1024) }
            local _, err = app:get(READ_PATH, { agentid = app.agentid })
            assert.equal(60011, err.errcode)
            assert.is_true(#err.errmsg < 1024, #err.errmsg)
            assert.is_true(#tostring(err) < 1024)
            assert.matches("truncated", err.errmsg, 1, true)
        end)
    end)

    describe("app:token{ force = true }", function()
        it("drops the cached token and fetches again, once per call", function()
            local app = fresh_app()
            local tok = assert(app:token())
            local again, expires_at = app:token { force = true }
            assert.is_string(again)
            assert.is_true(expires_at > os.time())
            assert.equal(2, emu.calls(GETTOKEN))
            assert.equal(again, (app:token()))
            assert.equal(2, emu.calls(GETTOKEN))
            assert.is_string(tok)
        end)

        it("works for downstream clients, and rejects unknown options", function()
            local app = fresh_app()
            local down = fresh_down(app)
            assert(down:token())
            assert(down:token { force = true })
            assert.equal(2, emu.calls(DOWN_GETTOKEN))
            assert.equal(1, emu.calls(GETTOKEN))
            assert.has_error(function() down:token { forse = true } end)
            assert.has_error(function() down:token { force = "yes" } end)
            assert.has_error(function() down:token(true) end)
        end)
    end)
end)
