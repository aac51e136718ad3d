-- The retry policy against every fault the emulator can inject.
local wecom = require "wecom"
local token = require "wecom.token"
local core = require "wecom.core"
local emu = require "helpers.emulator"

local READ_PATH = "/cgi-bin/agent/get"                           -- a GET
local POST_PATH = "/cgi-bin/corpgroup/corp/list_app_share_info"  -- a POST, sent as a write unless marked

describe("retry policy against the emulator", function()
    local env, fixture, app_def

    local function calls(path)
        return emu.stats()[path] or 0
    end

    local function fresh_app(extra)
        local app = wecom.new(emu.app_options(env, fixture, app_def, { backoff = 0.01, retries = 2 }, extra))
        app.store:delete(app.token_key)
        return app
    end

    local function read(app)
        return app:get(READ_PATH, { agentid = app.agentid })
    end

    local function write(app, opts)
        return app:post(POST_PATH, { agentid = app.agentid, business_type = 1 }, nil, opts)
    end

    emu.hooks(function(fx, _, _, info)
        env, fixture, app_def = info, fx, fx.upstream.apps[1]
    end)

    describe("token errors on an API call", function()
        -- 41001 ("access_token missing") for a request that carried our token:
        -- the stored token is empty or mangled, and a fresh one cures it
        for _, code in ipairs { 40014, 42001, 40001, 41001 } do
            it(code .. ": drops the token, fetches a new one once and resends", function()
                local app = fresh_app()
                assert(app:token())
                emu.fault { path = READ_PATH, errcode = code }
                local data, err = read(app)
                assert.is_nil(err)
                assert.equal(app.agentid, data.agentid)
                assert.equal(2, calls("/cgi-bin/gettoken"))
                assert.equal(2, calls(READ_PATH))
            end)
        end

        it("an empty token in the store (41001 from the server) is replaced on the next call", function()
            local app = fresh_app()
            app.store:set(app.token_key, "", core.now() + 3600)
            local data, err = read(app)
            assert.is_nil(err)
            assert.equal(app.agentid, data.agentid)
            assert.equal(1, calls("/cgi-bin/gettoken"))
            assert.is_true(#assert(app:token()) > 0)
        end)

        for _, code in ipairs { 40014, 41001 } do
            it(code .. " again after the refresh: gives up and says kind token", function()
                local app = fresh_app { retries = 3 }
                emu.fault { path = READ_PATH, errcode = code, count = 5 }
                local data, err = read(app)
                assert.is_nil(data)
                assert.equal("token", err.kind)
                assert.equal(code, err.errcode)
                assert.equal(2, calls(READ_PATH))
                assert.equal(2, calls("/cgi-bin/gettoken"))
            end)
        end

        it("compares before dropping: a token refreshed meanwhile survives", function()
            local app = fresh_app()
            local userid = fixture.upstream.users[1].userid
            -- both callers hold a token the server rejects (another process's old one)
            app.store:set(app.token_key, "STALE-TOKEN", core.now() + 3600)
            -- the second rejection arrives after the first caller stored a new token
            emu.fault { path = "/cgi-bin/user/get", delay_ms = 300 }
            local results = wecom.parallel {
                function() return read(app) end,
                function() return app:get("/cgi-bin/user/get", { userid = userid }) end,
            }
            assert.is_true(results[1].ok, tostring(results[1].err))
            assert.is_true(results[2].ok, tostring(results[2].err))
            assert.equal(userid, results[2].value.userid)
            -- the late rejection of STALE must not drop the new token: one fetch
            assert.equal(1, calls("/cgi-bin/gettoken"))
            assert.equal(2, calls("/cgi-bin/user/get"))
        end)

        it("refreshes when the emulator's clock passes the token's expiry", function()
            local app = fresh_app()
            local first = assert(app:token())
            emu.advance(7300)
            local data, err = read(app)
            assert.is_nil(err)
            assert.is_table(data)
            assert.equal(2, calls("/cgi-bin/gettoken"))
            assert.not_equal(first, (app:token()))
        end)

        it("refreshes the upstream token when corp/gettoken rejects it", function()
            local app = fresh_app()
            local list = assert(app:post(POST_PATH, { agentid = app.agentid, business_type = 1 }, nil,
                { idempotent = true }))
            local corp = list.corp_list[1]
            local down = app:downstream { corpid = corp.corpid, agentid = corp.agentid, business_type = 1 }
            down.store:delete(down.token_key)
            emu.fault { path = "/cgi-bin/corpgroup/corp/gettoken", errcode = 42001 }
            local data, err = down:get(READ_PATH, { agentid = corp.agentid })
            assert.is_nil(err)
            assert.equal(corp.agentid, data.agentid)
            assert.equal(2, calls("/cgi-bin/gettoken"))
            assert.equal(2, calls("/cgi-bin/corpgroup/corp/gettoken"))
        end)

        it("keeps a still-valid token when an early refresh fails", function()
            local app = fresh_app()
            local tok = assert(app:token())
            -- pretend it is close to expiry, and make gettoken fail
            app.store:set(app.token_key, tok, core.now() + 100)
            emu.fault { path = "/cgi-bin/gettoken", http_status = 500, count = 10 }
            local data, err = read(app)
            assert.is_nil(err)
            assert.is_table(data)
        end)
    end)

    describe("busy (-1)", function()
        it("is retried with backoff", function()
            local app = fresh_app()
            emu.fault { path = READ_PATH, errcode = -1 }
            assert(read(app))
            assert.equal(2, calls(READ_PATH))
        end)

        it("is retried for writes too, and gives up after `retries`", function()
            local app = fresh_app { retries = 2 }
            emu.fault { path = POST_PATH, errcode = -1, count = 3 }
            local data, err = write(app)
            assert.is_nil(data)
            assert.equal("busy", err.kind)
            assert.equal(-1, err.errcode)
            assert.equal(3, err.attempts)
            assert.equal(3, calls(POST_PATH))
        end)

        it("on gettoken is retried as well", function()
            local app = fresh_app()
            emu.fault { path = "/cgi-bin/gettoken", errcode = -1 }
            assert(app:token())
            assert.equal(2, calls("/cgi-bin/gettoken"))
        end)
    end)

    describe("rate limits", function()
        for _, code in ipairs { 45009, 45033 } do
            it(code .. " is kind rate_limit and not retried", function()
                local app = fresh_app { retries = 3 }
                emu.fault { path = READ_PATH, errcode = code }
                local data, err = read(app)
                assert.is_nil(data)
                assert.equal("rate_limit", err.kind)
                assert.equal(code, err.errcode)
                assert.is_false(err.retryable)
                assert.equal(1, calls(READ_PATH))
            end)
        end

        it("on gettoken is kind rate_limit too", function()
            local app = fresh_app()
            emu.fault { path = "/cgi-bin/gettoken", errcode = 45009 }
            local tok, err = app:token()
            assert.is_nil(tok)
            assert.equal("rate_limit", err.kind)
            assert.equal(1, calls("/cgi-bin/gettoken"))
        end)
    end)

    describe("HTTP 5xx", function()
        for _, status in ipairs { 500, 502 } do
            it(status .. " on a read is retried", function()
                local app = fresh_app()
                emu.fault { path = READ_PATH, http_status = status }
                assert(read(app))
                assert.equal(2, calls(READ_PATH))
            end)
        end

        it("500 on a write is not retried: the server may have applied it", function()
            local app = fresh_app()
            emu.fault { path = POST_PATH, http_status = 500 }
            local data, err = write(app)
            assert.is_nil(data)
            assert.equal("transport", err.kind)
            assert.equal(500, err.http_status)
            assert.equal(1, calls(POST_PATH))
        end)

        it("502 on a write is retried: the gateway never reached the server", function()
            local app = fresh_app()
            emu.fault { path = POST_PATH, http_status = 502 }
            assert(write(app))
            assert.equal(2, calls(POST_PATH))
        end)

        it("gives up after `retries` with the status in the error", function()
            local app = fresh_app { retries = 1 }
            emu.fault { path = READ_PATH, http_status = 503, count = 5 }
            local data, err = read(app)
            assert.is_nil(data)
            assert.equal(503, err.http_status)
            assert.equal(2, calls(READ_PATH))
        end)
    end)

    describe("timeouts", function()
        it("are retried for a GET", function()
            local app = fresh_app { timeout = 0.3 }
            emu.fault { path = READ_PATH, delay_ms = 1000 }
            local data, err = read(app)
            assert.is_nil(err)
            assert.is_table(data)
            assert.equal(2, calls(READ_PATH))
        end)

        it("are not retried for a POST write", function()
            local app = fresh_app { timeout = 0.3 }
            assert(app:token())
            emu.fault { path = POST_PATH, delay_ms = 1000 }
            local data, err = write(app)
            assert.is_nil(data)
            assert.equal("timeout", err.kind)
            assert.is_false(err.retryable)
            assert.equal(1, calls(POST_PATH))
        end)

        it("are retried for a POST marked idempotent", function()
            local app = fresh_app { timeout = 0.3 }
            assert(app:token())
            emu.fault { path = POST_PATH, delay_ms = 1000 }
            assert(write(app, { idempotent = true }))
            assert.equal(2, calls(POST_PATH))
        end)

        it("honour a per-call timeout", function()
            local app = fresh_app { timeout = 5, retries = 0 }
            assert(app:token())
            emu.fault { path = READ_PATH, delay_ms = 1000 }
            local data, err = app:get(READ_PATH, { agentid = app.agentid }, { timeout = 0.3 })
            assert.is_nil(data)
            assert.equal("timeout", err.kind)
        end)
    end)

    describe("broken connections and bodies", function()
        it("a closed connection on a read is retried", function()
            local app = fresh_app()
            emu.fault { path = READ_PATH, close = true }
            local data, err = read(app)
            assert.is_nil(err)
            assert.is_table(data)
            assert.is_true(calls(READ_PATH) >= 2)
        end)

        it("a closed connection on a write is not retried: it may have been applied", function()
            local app = fresh_app()
            assert(app:token())
            emu.fault { path = POST_PATH, close = true }
            local data, err = write(app)
            assert.is_nil(data)
            assert.equal("transport", err.kind)
            assert.is_false(err.retryable)
            assert.equal(1, calls(POST_PATH))
        end)

        local bodies = {
            { "an HTML page", "<html><head><title>502</title></head><body>Bad Gateway</body></html>" },
            { "truncated JSON", '{"errcode":0,"errmsg":"ok","agentid":10' },
            { "an empty body", "" },
            { "an empty JSON array", "[]" },
            { "a JSON array of objects", '[{"errcode":0}]' },
            { "an object followed by NUL and garbage", '{"errcode":0,"errmsg":"ok"}\0garbage' },
            { "two objects", '{"errcode":0}{"errcode":0}' },
        }
        for _, case in ipairs(bodies) do
            it(case[1] .. " is a decode error with the HTTP status, not retried", function()
                local app = fresh_app()
                emu.fault { path = READ_PATH, body = case[2] }
                local data, err = read(app)
                assert.is_nil(data)
                assert.equal("decode", err.kind)
                assert.equal(200, err.http_status)
                assert.equal("GET", err.method)
                assert.equal(READ_PATH, err.path)
                assert.equal(1, calls(READ_PATH))
            end)
        end
    end)

    describe("responses over max_body", function()
        local big = '{"errcode":0,"errmsg":"ok","pad":"' .. string.rep("x", 8192) .. '"}'

        it("end in a transport error that is not retried, even for a read", function()
            local app = fresh_app { max_body = 4096, retries = 2 }
            assert(app:token())
            emu.fault { path = READ_PATH, body = big, count = 3 }
            local data, err = read(app)
            assert.is_nil(data)
            assert.equal("transport", err.kind)
            assert.is_false(err.retryable)
            assert.matches("max_body", err.errmsg, 1, true)
            assert.equal(1, calls(READ_PATH))
        end)

        it("are fine under the limit", function()
            local app = fresh_app { max_body = 16384 }
            emu.fault { path = READ_PATH, body = big }
            local data = assert(read(app))
            assert.equal(8192, #data.pad)
        end)
    end)

    it("a connection refused is a retryable transport error", function()
        local app = fresh_app { base_url = "https://127.0.0.1:1", retries = 1 }
        local data, err = read(app)
        assert.is_nil(data)
        assert.equal("transport", err.kind)
        assert.is_true(err.retryable)
        assert.equal(2, err.attempts)
    end)

    it("tickets are cached under the token and fetched once", function()
        local app = fresh_app()
        app.store:delete(token.ticket_key(app.token_key, "jsapi"))
        emu.fault { path = "/cgi-bin/get_jsapi_ticket", errcode = -1 }
        local t1 = assert(app:ticket("jsapi"))
        assert.equal(t1, (app:ticket("jsapi")))
        assert.equal(2, calls("/cgi-bin/get_jsapi_ticket"))
    end)
end)
