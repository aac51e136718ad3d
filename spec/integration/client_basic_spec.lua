-- The client against the emulator over HTTPS (verification on): get, post,
-- tokens, downstream tokens, tickets, and what errors and clients show.
local wecom = require "wecom"
local emu = require "helpers.emulator"

local function calls(path)
    return emu.stats()[path] or 0
end

describe("client against the emulator", function()
    local env, fixture, app_def, secret

    -- A client with nothing cached: the process-wide cache outlives tests.
    local function fresh_app(extra)
        local app = wecom.new(emu.app_options(env, fixture, app_def, { backoff = 0.01, timeout = 5 }, extra))
        app.store:delete(app.token_key)
        return app
    end

    local function shared_corp(app)
        local data = assert(app:post("/cgi-bin/corpgroup/corp/list_app_share_info",
            { agentid = app.agentid, business_type = 1 }, nil, { idempotent = true }))
        return data.corp_list[1]
    end

    local function fresh_down(app, corp)
        local down = app:downstream { corpid = corp.corpid, agentid = corp.agentid, business_type = 1 }
        down.store:delete(down.token_key)
        for _, kind in ipairs { "jsapi", "agent_config" } do
            down.store:delete(require("wecom.token").ticket_key(down.token_key, kind))
        end
        return down
    end

    setup(function()
        env = emu.start()
        fixture = emu.fixture()
        app_def = fixture.upstream.apps[1]
        secret = app_def.secret
    end)

    teardown(function() emu.stop() end)

    before_each(function() emu.reset() end)

    it("fetches a token once and injects it into every call", function()
        local app = fresh_app()
        local tok, expires_at = app:token()
        assert.is_string(tok)
        assert.is_true(expires_at > os.time() + 3600)
        for _ = 1, 3 do
            local data, err = app:post("/cgi-bin/corpgroup/corp/list_app_share_info",
                { agentid = app.agentid, business_type = 1 }, nil, { idempotent = true })
            assert.is_nil(err)
            assert.is_table(data.corp_list)
        end
        assert.equal(1, calls("/cgi-bin/gettoken"))
        assert.equal(3, calls("/cgi-bin/corpgroup/corp/list_app_share_info"))
        assert.equal(tok, (app:token()))
    end)

    it("returns numbers as integers and answers GET with a query", function()
        local app = fresh_app()
        local down = fresh_down(app, shared_corp(app))
        local data, err = down:get("/cgi-bin/agent/get", { agentid = down.agentid })
        assert.is_nil(err)
        assert.equal(down.agentid, data.agentid)
        assert.equal(0, data.errcode)
        assert.equal(tostring(down.agentid), tostring(data.agentid))  -- no "1000011.0"
    end)

    it("gets a downstream token with the upstream token and caches it", function()
        local app = fresh_app()
        local corp = shared_corp(app)
        local down = fresh_down(app, corp)
        local dtok = assert(down:token())
        assert.not_equal((app:token()), dtok)
        assert(down:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
        assert(down:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
        assert.equal(1, calls("/cgi-bin/corpgroup/corp/gettoken"))
        assert.equal(1, calls("/cgi-bin/gettoken"))
    end)

    it("fails a downstream token for a corp the app is not shared to, as kind token", function()
        local app = fresh_app()
        local down = app:downstream { corpid = "wwNOTSHARED", agentid = 1000099, business_type = 1 }
        down.store:delete(down.token_key)
        local data, err = down:get("/cgi-bin/agent/get", { agentid = 1000099 })
        assert.is_nil(data)
        assert.equal("token", err.kind)
        assert.is_number(err.errcode)
        assert.equal("/cgi-bin/corpgroup/corp/gettoken", err.path)
        assert.equal(1, calls("/cgi-bin/corpgroup/corp/gettoken"))
    end)

    it("fetches and caches both tickets with the downstream token", function()
        local app = fresh_app()
        local down = fresh_down(app, shared_corp(app))
        local jsapi, jexp = down:ticket("jsapi")
        local agent = down:ticket("agent_config")
        assert.is_string(jsapi)
        assert.is_string(agent)
        assert.not_equal(jsapi, agent)
        assert.is_true(jexp > os.time())
        assert.equal(jsapi, (down:ticket("jsapi")))
        assert.equal(agent, (down:ticket("agent_config")))
        assert.equal(1, calls("/cgi-bin/get_jsapi_ticket"))
        assert.equal(1, calls("/cgi-bin/ticket/get"))
    end)

    it("reports a wrong secret as a token error, without retrying or leaking it", function()
        local bad_secret = "WrongSecretValue0000000000000000000000000"
        local app = fresh_app { secret = bad_secret, retries = 3 }
        local data, err = app:get("/cgi-bin/agent/get", { agentid = app.agentid })
        assert.is_nil(data)
        assert.equal("token", err.kind)
        assert.equal(40001, err.errcode)
        assert.equal("/cgi-bin/gettoken", err.path)
        assert.is_false(err.retryable)
        assert.equal(1, calls("/cgi-bin/gettoken"))
        for _, s in ipairs { tostring(err), tostring(app), err.errmsg } do
            assert.not_matches(bad_secret, s, 1, true)
        end
    end)

    it("shows neither secret nor token in errors and clients after failures", function()
        local app = fresh_app()
        local tok = assert(app:token())
        emu.fault({ path = "/cgi-bin/agent/get", count = 2, errcode = 40014 })
        local _, err = app:get("/cgi-bin/agent/get", { agentid = app.agentid })
        assert.equal("token", err.kind)
        emu.fault({ path = "/cgi-bin/agent/get", body = "<html>" .. tok .. "</html>" })
        local _, err2 = app:get("/cgi-bin/agent/get", { agentid = app.agentid })
        assert.equal("decode", err2.kind)
        local now_tok = assert(app:token())
        for _, s in ipairs { tostring(err), tostring(err2), tostring(app), err.path, err2.path, err.errmsg } do
            assert.not_matches(secret, s, 1, true)
            assert.not_matches(tok, s, 1, true)
            assert.not_matches(now_tok, s, 1, true)
            assert.not_matches("access_token=", s, 1, true)
        end
    end)

    it("verifies TLS: without the emulator's CA the call fails as kind tls", function()
        local app = fresh_app()
        app = wecom.new { corpid = app.corpid, secret = secret, agentid = app.agentid,
                                            base_url = env.base_url, retries = 2, backoff = 0.01 }  -- system CAs only
        local data, err = app:token()
        assert.is_nil(data)
        assert.equal("tls", err.kind)
        assert.is_false(err.retryable)
        assert.equal(0, calls("/cgi-bin/gettoken"))
    end)

    it("accepts a path with its own query string", function()
        local app = fresh_app()
        local data = assert(app:get("/cgi-bin/agent/get?agentid=" .. app.agentid))
        assert.equal(app.agentid, data.agentid)
    end)
end)
