-- wecom.api.identity3rd against the emulator: a third-party app's OAuth link
-- followed through the emulator's OAuth page, code -> user, user_ticket ->
-- detail, mini-program sessions, unionid_to_external_userid_3rd, and the
-- provider-token conversions.  The suite and provider objects are
-- stand-ins sending their tokens over HTTPS (helpers.provider_standin)
-- until wecom.suite / wecom.provider wire these functions in.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"
local standin = require "helpers.provider_standin"
local wecom = require "wecom"
local id3 = require "wecom.api.identity3rd"
local wurl = require "wecom.url"

describe("third-party identity (emulator)", function()
    local info, fx, third, dk, suite

    setup(function()
        info = emu.start()
        fx = emu.fixture()
        third, dk = pv.suite(fx, false), pv.suite(fx, true)
    end)

    teardown(function()
        emu.stop()
    end)

    before_each(function()
        emu.reset()
        suite = standin.suite(info, third)
    end)

    describe("suite:oauth_url()", function()
        it("names the suite_id as appid, no agentid; the emulator's page turns it into a code", function()
            pv.install(third, "wwRETAILCORP01")
            local link = id3.oauth_url(suite, { redirect_uri = "https://" .. third.redirect_domain .. "/cb?x=1",
                                                state = "s1", scope = "snsapi_privateinfo" })
            assert.matches("#wechat_redirect$", link)
            local path, query = link:match("^" .. info.base_url:gsub("%p", "%%%0") .. "(/[^?]*)%?([^#]*)")
            assert.equal("/connect/oauth2/authorize", path)
            local q = wurl.parse_query(query)
            assert.same({ appid = third.suite_id, redirect_uri = "https://" .. third.redirect_domain .. "/cb?x=1",
                          response_type = "code", scope = "snsapi_privateinfo", state = "s1" }, q)
            -- a browser confirming for a member of the corp that installed the app
            q.confirm, q.user = "1", "wwRETAILCORP01/qianwei"
            local status, _, res = emu.request("GET", path, { query = q })
            assert.equal(302, status)
            local back = wurl.parse_query(res.headers.location)
            assert.equal("s1", back.state)

            local who = assert(id3.user_by_code(suite, back.code))
            assert.equal("wwRETAILCORP01", who.corpid)
            assert.equal("qianwei", who.userid)
            assert.matches("^wo%w+$", who.open_userid)
            assert.is_string(who.user_ticket)
            assert.equal(0, who.raw.errcode)
            -- the code went with the suite token, nothing else
            assert.is_string(suite.sent[1].query.suite_access_token)
            assert.is_nil(suite.sent[1].query.access_token)

            local detail = assert(id3.user_detail(suite, who.user_ticket))
            assert.equal("qianwei", detail.userid)
            assert.equal("wwRETAILCORP01", detail.corpid)
            assert.is_nil(detail.errcode)
        end)

        it("defaults to snsapi_base and WeCom's host; raises for a 代开发 template and bad options", function()
            local plain = { suite_id = third.suite_id }
            assert.equal("https://open.weixin.qq.com/connect/oauth2/authorize?appid=" .. third.suite_id
                .. "&redirect_uri=https%3A%2F%2Fa.example%2F&response_type=code&scope=snsapi_base#wechat_redirect",
                id3.oauth_url(plain, { redirect_uri = "https://a.example/" }))
            local customized = { suite_id = dk.suite_id }
            assert.has_error(function() id3.oauth_url(customized, { redirect_uri = "https://a.example/" }) end,
                "wecom.suite:oauth_url: a 代开发 app uses the corp forms (its wecom.new client: oauth_url with its"
                .. " agentid, user_by_code, jscode2session)")
            assert.has_error(function() id3.oauth_url(plain, { redirect_uri = "https://a.example/", agentid = 1 }) end,
                "wecom.suite:oauth_url: unknown option 'agentid'")
            assert.has_error(function()
                id3.oauth_url(plain, { redirect_uri = "https://a.example/", state = "a b" })
            end,
                "wecom.suite:oauth_url: opts.state must be at most 128 letters and digits (got string)")
        end)
    end)

    describe("suite:user_by_code()", function()
        it("a member of a corp without the app: a ciphertext userid, its open_userid, no ticket", function()
            pv.install(third, "wwRETAILCORP01")
            local code = pv.ok_control("oauth_code", { suite_id = third.suite_id, corpid = "wwRETAILCORP02",
                                                       userid = "fengtao", scope = "snsapi_privateinfo" }).code
            local who = assert(id3.user_by_code(suite, code))
            assert.equal("wwRETAILCORP02", who.corpid)
            assert.not_equal("fengtao", who.userid)
            assert.equal(who.open_userid, who.userid)
            assert.is_nil(who.user_ticket)
        end)

        it("a visitor: an openid; a spent code and a bad ticket: the API's errors", function()
            local code = pv.ok_control("oauth_code", { suite_id = third.suite_id, openid = "oVisit42" }).code
            local who = assert(id3.user_by_code(suite, code))
            assert.equal("oVisit42", who.openid)
            assert.is_nil(who.userid)
            local none, err = id3.user_by_code(suite, code)
            assert.is_nil(none)
            assert.equal("api", err.kind)
            assert.equal(40029, err.errcode)
            local d, derr = id3.user_detail(suite, "not-a-ticket")
            assert.is_nil(d)
            assert.equal(84015, derr.errcode)
            assert.has_error(function() id3.user_by_code(suite, "") end,
                "wecom.suite:user_by_code: code must be a non-empty string (got empty string)")
        end)
    end)

    describe("suite:jscode2session()", function()
        it("gives the corp, the userid, the open_userid and a session key", function()
            pv.install(third, "wwRETAILCORP01")
            local code = pv.ok_control("js_code", { suite_id = third.suite_id, corpid = "wwRETAILCORP01",
                                                    userid = "dongxue" }).code
            local s = assert(id3.jscode2session(suite, code))
            assert.equal("wwRETAILCORP01", s.corpid)
            assert.equal("dongxue", s.userid)
            assert.matches("^wo%w+$", s.open_userid)
            assert.is_string(s.session_key)
            local _, err = id3.jscode2session(suite, code)
            assert.equal(40029, err.errcode)
        end)
    end)

    describe("suite:unionid_to_external_userid_3rd()", function()
        it("lists the customer's ids in the corps that installed the app", function()
            local inst = pv.install(third, "wwDOWNCORP01")
            local list = assert(id3.unionid_to_external_userid_3rd(suite,
                { unionid = "oUnion_wx_000001", openid = "oMini_000001" }))
            assert.equal(1, #list)
            assert.equal("wwDOWNCORP01", list[1].corpid)
            local client_token = pv.corp_token(third, inst.token, "wwDOWNCORP01", inst.permanent_code)
            local _, new = emu.api("POST", "/cgi-bin/externalcontact/get_new_external_userid", client_token,
                { external_userid_list = { "wmDOWN01ext000001" } })
            assert.equal(new.items[1].new_external_userid, list[1].external_userid)
            local _, err = id3.unionid_to_external_userid_3rd(suite, { unionid = "oUnion_wx_000001", openid = "x" })
            assert.equal(40058, err.errcode)
            assert.has_error(function() id3.unionid_to_external_userid_3rd(suite, { unionid = "u" }) end,
                "wecom.suite:unionid_to_external_userid_3rd: opts.openid is required (a non-empty string)")
        end)
    end)

    describe("provider", function()
        it("corpid_to_opencorpid: a case-sensitive open corpid for an authorized corp", function()
            pv.install(third, "wwRETAILCORP01")
            local provider = standin.provider(info, fx)
            local open = assert(id3.corpid_to_opencorpid(provider, "wwRETAILCORP01"))
            assert.matches("^wp%w+$", open)
            assert.not_equal(open:lower(), open)
            assert.is_string(provider.sent[1].query.provider_access_token)
            local none, err = id3.corpid_to_opencorpid(provider, "wwRETAILCORP02")
            assert.is_nil(none)
            assert.equal(40013, err.errcode)
        end)

        it("finish_external_userid_migration", function()
            pv.install(third, "wwRETAILCORP01")
            local provider = standin.provider(info, fx)
            assert.is_true(id3.finish_external_userid_migration(provider, "wwRETAILCORP01"))
            local _, err = id3.finish_external_userid_migration(provider, "wwNOBODY")
            assert.equal(40013, err.errcode)
            assert.has_error(function() id3.finish_external_userid_migration(provider) end,
                "wecom.provider:finish_external_userid_migration: corpid must be a non-empty string (got nil)")
        end)
    end)

    describe("JSAPI of a 代开发 app's client", function()
        it("signs with the corp's own tickets, fetched with its access_token", function()
            local inst = pv.install(dk, "wwRETAILCORP01")
            local c = wecom.new { corpid = "wwRETAILCORP01", secret = inst.permanent_code, agentid = inst.agentid,
                                  base_url = info.base_url, ca_file = info.ca_file }
            local page = "https://patrol.example/page?x=1#frag"
            local conf = assert(c:jsapi_config(page, { timestamp = 1700000000, nonce = "abc" }))
            assert.equal("wwRETAILCORP01", conf.appId)
            local token = assert(c:token())
            local _, t = emu.api("GET", "/cgi-bin/get_jsapi_ticket", token)
            local jsapi = require "wecom.api.jsapi"
            assert.equal(jsapi.sign(t.ticket, "abc", 1700000000, page), conf.signature)
            local agent = assert(c:agent_config(page, { timestamp = 1700000000, nonce = "abc" }))
            assert.equal(inst.agentid, agent.agentid)
            assert.equal("wwRETAILCORP01", agent.corpid)
            local _, a = emu.api("GET", "/cgi-bin/ticket/get", token, { type = "agent_config" })
            assert.equal(jsapi.sign(a.ticket, "abc", 1700000000, page), agent.signature)
            -- cached: asked again, no new ticket fetch
            local before = emu.stats()["/cgi-bin/get_jsapi_ticket"]
            assert(c:jsapi_config(page))
            assert.equal(before, emu.stats()["/cgi-bin/get_jsapi_ticket"])
        end)
    end)
end)
