-- Lifetimes on the emulator clock (POST /__emulator/clock): suite tickets
-- 30 minutes, pre_auth_code 20, AuthCode 10 (single use), suite, provider
-- and corp tokens 2 hours, third-party OAuth codes 5 minutes, user tickets 30.
-- Each check stops a few seconds short of the end, then steps past it.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"

local SHORT = 5   -- seconds short of an end: slack for the time the calls take

describe("emulator provider lifetimes", function()
    local fx, third, dk

    emu.hooks(function(f)
        fx = f
        third, dk = pv.suite(fx, false), pv.suite(fx, true)
    end)

    local function suite_token_with(ticket)
        return pv.service("POST", "get_suite_token", nil,
            { suite_id = third.suite_id, suite_secret = third.suite_secret, suite_ticket = ticket })
    end

    it("a suite ticket is good for 30 minutes, then 40085, even while a suite token lives", function()
        local ticket = pv.ticket(third).suite_ticket
        emu.advance(1800 - SHORT)
        local ok = suite_token_with(ticket)
        assert.is_string(ok.suite_access_token)
        emu.advance(SHORT)
        local late = suite_token_with(ticket)
        assert.equal(40085, late.errcode)
        assert.is_nil(late.suite_access_token)
        -- a new push brings it back, with the token still valid
        local fresh = suite_token_with(pv.ticket(third).suite_ticket)
        assert.equal(ok.suite_access_token, fresh.suite_access_token)
    end)

    it("events carry the emulator clock's time", function()
        local before = tonumber(pv.ticket(third).query.timestamp)
        emu.advance(1000)
        local ev = pv.ticket(third)
        local after = tonumber(ev.query.timestamp)
        assert.is_true(after - before >= 1000)
        assert.equal(after, tonumber(assert(pv.decrypt(third, ev)).TimeStamp))
    end)

    it("a suite token lives 2 hours, then 42009, and a fresh one comes", function()
        local token, data = pv.suite_token(third)
        emu.advance(100)
        local again = suite_token_with(pv.ticket(third).suite_ticket)
        assert.equal(token, again.suite_access_token)
        assert.is_true(again.expires_in <= data.expires_in - 100)
        emu.advance(7200 - 100 - SHORT)
        assert.equal(0, pv.service("GET", "get_pre_auth_code", token).errcode)
        emu.advance(SHORT)
        assert.equal(42009, pv.service("GET", "get_pre_auth_code", token).errcode)
        local new = pv.suite_token(third)
        assert.not_equal(token, new)
        assert.equal(0, pv.service("GET", "get_pre_auth_code", new).errcode)
    end)

    it("a provider token lives 2 hours, then 42009", function()
        local token = pv.provider_token(fx)
        pv.install(third, "wwRETAILCORP01")
        local function call(t)
            return pv.service("POST", "corpid_to_opencorpid", t, { corpid = "wwRETAILCORP01" }, "provider_access_token")
        end
        emu.advance(7200 - SHORT)
        assert.equal(0, call(token).errcode)
        emu.advance(SHORT)
        assert.equal(42009, call(token).errcode)
        assert.equal(0, call(pv.provider_token(fx)).errcode)
    end)

    it("a pre_auth_code lives 20 minutes, then 42007 (set_session_info and the install page)", function()
        local token = pv.suite_token(third)
        local pre = pv.service("GET", "get_pre_auth_code", token)
        assert.equal(1200, pre.expires_in)
        local function session()
            return pv.service("POST", "set_session_info", token,
                { pre_auth_code = pre.pre_auth_code, session_info = { auth_type = 1 } })
        end
        emu.advance(1200 - SHORT)
        assert.equal(0, session().errcode)
        emu.advance(SHORT)
        assert.equal(42007, session().errcode)
        local status, _, res = emu.request("GET", "/3rdapp/install", { query = {
            suite_id = third.suite_id, pre_auth_code = pre.pre_auth_code,
            redirect_uri = "https://" .. third.install_domain .. "/done" } })
        assert.equal(200, status)
        assert.matches("preauthcode", res.body)
        assert.matches(">42007<", res.body)
    end)

    it("an AuthCode lives 10 minutes", function()
        local token = pv.suite_token(third)
        local function create(corpid)
            return pv.ok_control("authorize", { suite_id = third.suite_id, corpid = corpid, action = "create" })
        end
        local a, b = create("wwRETAILCORP01"), create("wwRETAILCORP02")
        emu.advance(600 - SHORT)
        assert.equal(0, pv.service("POST", "get_permanent_code", token, { auth_code = a.auth_code }).errcode)
        emu.advance(SHORT)
        assert.equal(40078, pv.service("POST", "get_permanent_code", token, { auth_code = b.auth_code }).errcode)
    end)

    it("an authorized corp's token lives 2 hours; get_corp_token then gives a new one", function()
        local inst = pv.install(third, "wwRETAILCORP01")
        local corp_token = pv.corp_token(third, inst.token, "wwRETAILCORP01", inst.permanent_code)
        emu.advance(7200 - SHORT)
        local _, ok = emu.api("GET", "/cgi-bin/user/get", corp_token, { userid = "qianwei" })
        assert.equal(0, ok.errcode)
        emu.advance(SHORT)
        local _, late = emu.api("GET", "/cgi-bin/user/get", corp_token, { userid = "qianwei" })
        assert.equal(42001, late.errcode)
        local suite_token = pv.suite_token(third)
        local fresh = pv.corp_token(third, suite_token, "wwRETAILCORP01", inst.permanent_code)
        assert.not_equal(corp_token, fresh)
        local _, again = emu.api("GET", "/cgi-bin/user/get", fresh, { userid = "qianwei" })
        assert.equal(0, again.errcode)
    end)

    it("a 代开发 app's token lives 2 hours too", function()
        local inst = pv.install(dk, "wwRETAILCORP02")
        local app_token = pv.corp_token(dk, inst.token, "wwRETAILCORP02", inst.permanent_code)
        emu.advance(7200)
        local _, late = emu.api("GET", "/cgi-bin/user/get", app_token, { userid = "fengtao" })
        assert.equal(42001, late.errcode)
        assert.not_equal(app_token, pv.corp_token(dk, inst.token, "wwRETAILCORP02", inst.permanent_code))
    end)

    it("a third-party OAuth code lives 5 minutes and is single use; a user ticket 30", function()
        pv.install(third, "wwRETAILCORP01")
        local function code(scope)
            return pv.ok_control("oauth_code", { suite_id = third.suite_id, corpid = "wwRETAILCORP01",
                userid = "qianwei", scope = scope }).code
        end
        local a, b = code("snsapi_privateinfo"), code()
        emu.advance(300 - SHORT)
        local token = pv.suite_token(third)
        local who = pv.service("GET", "auth/getuserinfo3rd", token, { code = a })
        assert.equal(0, who.errcode)
        assert.equal(40029, pv.service("GET", "auth/getuserinfo3rd", token, { code = a }).errcode)
        emu.advance(SHORT)
        assert.equal(40029, pv.service("GET", "auth/getuserinfo3rd", token, { code = b }).errcode)

        assert.equal(1800, who.expires_in)
        emu.advance(1800 - SHORT - SHORT)
        token = pv.suite_token(third)
        assert.equal(0, pv.service("POST", "auth/getuserdetail3rd", token, { user_ticket = who.user_ticket }).errcode)
        emu.advance(SHORT)
        assert.equal(84014,
            pv.service("POST", "auth/getuserdetail3rd", token, { user_ticket = who.user_ticket }).errcode)
    end)
end)
