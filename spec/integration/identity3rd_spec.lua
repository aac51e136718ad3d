-- A provider's identity calls on wecom.suite and wecom.provider against the
-- emulator: a third-party app's OAuth link followed through the emulator's
-- OAuth page, code -> user, user_ticket -> detail, mini-program sessions,
-- unionid_to_external_userid_3rd, the provider-token conversions; and what
-- a suite's corp clients do with their corp's credentials (JSAPI tickets,
-- the account-ID conversions), for a third-party app and a 代开发 app.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"
local sh = require "helpers.suite"
local wecom = require "wecom"
local jsapi = require "wecom.api.jsapi"
local wurl = require "wecom.url"

-- spy(transport) -> the list of requests the transport sends from now on,
-- each { method, path, query }; they still go over HTTPS to the emulator
local function spy(transport)
    local sent = {}
    local real = transport.request
    transport.request = function(self, req)
        local path, query = req.url:match("^https://[^/]+(/[^?]*)%??(.*)$")
        sent[#sent + 1] = { method = req.method, path = path, query = wurl.parse_query(query) }
        return real(self, req)
    end
    return sent
end

-- sent_to(sent, path) -> the requests to path
local function sent_to(sent, path)
    local out = {}
    for _, r in ipairs(sent) do
        if r.path == path then
            out[#out + 1] = r
        end
    end
    return out
end

local calls = emu.calls

local GETUSERINFO3RD = "/cgi-bin/service/auth/getuserinfo3rd"
local JSAPI_TICKET = "/cgi-bin/get_jsapi_ticket"
local AGENT_TICKET = "/cgi-bin/ticket/get"

describe("third-party identity (emulator)", function()
    local info, fx, third, suite, sent

    sh.hooks(function(...) info, fx, third = ... end)

    before_each(function()
        suite = sh.ready(sh.new(info, fx, false, { retries = 0 }))
        sent = spy(suite.transport)
    end)

    describe("suite:oauth_url()", function()
        it("names the suite_id as appid, no agentid; the emulator's page turns it into a code", function()
            sh.install(suite, "wwRETAILCORP01")
            local link = suite:oauth_url { redirect_uri = "https://" .. third.redirect_domain .. "/cb?x=1",
                                           state = "s1", scope = "snsapi_privateinfo" }
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

            local who = assert(suite:user_by_code(back.code))
            assert.equal("wwRETAILCORP01", who.corpid)
            assert.equal("qianwei", who.userid)
            assert.matches("^wo%w+$", who.open_userid)
            assert.is_string(who.user_ticket)
            assert.equal(0, who.raw.errcode)
            -- the code went with the suite token, nothing else
            local asked = sent_to(sent, GETUSERINFO3RD)
            assert.equal(1, #asked)
            assert.equal(assert(suite:token()), asked[1].query.suite_access_token)
            assert.is_nil(asked[1].query.access_token)

            local detail = assert(suite:user_detail(who.user_ticket))
            assert.equal("qianwei", detail.userid)
            assert.equal("wwRETAILCORP01", detail.corpid)
            assert.is_nil(detail.errcode)
        end)

        it("defaults to snsapi_base and WeCom's host; raises for a 代开发 template and bad options", function()
            local opts = sh.options(info, fx, false)
            opts.web_base_url = nil
            local plain = wecom.suite(opts)
            assert.equal("https://open.weixin.qq.com/connect/oauth2/authorize?appid=" .. third.suite_id
                .. "&redirect_uri=https%3A%2F%2Fa.example%2F&response_type=code&scope=snsapi_base#wechat_redirect",
                plain:oauth_url { redirect_uri = "https://a.example/" })
            local customized = sh.new(info, fx, true)
            local corp_forms = "a 代开发 app uses the corp forms (its wecom.new client: oauth_url with its"
                .. " agentid, user_by_code, jscode2session)"
            assert.has_error(function() customized:oauth_url { redirect_uri = "https://a.example/" } end,
                "wecom.suite:oauth_url: " .. corp_forms)
            assert.has_error(function() customized:user_by_code("code") end,
                "wecom.suite:user_by_code: " .. corp_forms)
            assert.has_error(function() customized:jscode2session("code") end,
                "wecom.suite:jscode2session: " .. corp_forms)
            assert.has_error(function() plain:oauth_url { redirect_uri = "https://a.example/", agentid = 1 } end,
                "wecom.suite:oauth_url: unknown option 'agentid'")
            assert.has_error(function() plain:oauth_url { redirect_uri = "https://a.example/", state = "a b" } end,
                "wecom.suite:oauth_url: opts.state must be at most 128 letters and digits (got string)")
            assert.has_error(function() plain:oauth_url() end,
                "wecom.suite:oauth_url: opts must be a table (got nil)")
        end)
    end)

    describe("suite:user_by_code()", function()
        it("a member of a corp without the app: a ciphertext userid, its open_userid, no ticket", function()
            sh.install(suite, "wwRETAILCORP01")
            local code = pv.ok_control("oauth_code", { suite_id = third.suite_id, corpid = "wwRETAILCORP02",
                                                       userid = "fengtao", scope = "snsapi_privateinfo" }).code
            local who = assert(suite:user_by_code(code))
            assert.equal("wwRETAILCORP02", who.corpid)
            assert.not_equal("fengtao", who.userid)
            assert.equal(who.open_userid, who.userid)
            assert.is_nil(who.user_ticket)
        end)

        it("a visitor: an openid; a spent code and a bad ticket: the API's errors", function()
            local code = pv.ok_control("oauth_code", { suite_id = third.suite_id, openid = "oVisit42" }).code
            local who = assert(suite:user_by_code(code))
            assert.equal("oVisit42", who.openid)
            assert.is_nil(who.userid)
            local none, err = suite:user_by_code(code)
            assert.is_nil(none)
            assert.equal("api", err.kind)
            assert.equal(40029, err.errcode)
            local d, derr = suite:user_detail("not-a-ticket")
            assert.is_nil(d)
            assert.equal(84015, derr.errcode)
            assert.has_error(function() suite:user_by_code("") end,
                "wecom.suite:user_by_code: code must be a non-empty string (got empty string)")
            assert.has_error(function() suite:user_detail() end,
                "wecom.suite:user_detail: user_ticket must be a non-empty string (got nil)")
        end)

        it("a rejected suite token is refreshed once, like an access token", function()
            local code = pv.ok_control("oauth_code", { suite_id = third.suite_id, openid = "oVisit43" }).code
            assert(suite:token())
            local before = calls("/cgi-bin/service/get_suite_token")
            emu.fault { path = GETUSERINFO3RD, count = 1, errcode = 42009 }
            local who = assert(suite:user_by_code(code))
            assert.equal("oVisit43", who.openid)
            assert.equal(before + 1, calls("/cgi-bin/service/get_suite_token"))
            assert.equal(2, calls(GETUSERINFO3RD))
        end)
    end)

    describe("suite:jscode2session()", function()
        it("gives the corp, the userid, the open_userid and a session key", function()
            sh.install(suite, "wwRETAILCORP01")
            local code = pv.ok_control("js_code", { suite_id = third.suite_id, corpid = "wwRETAILCORP01",
                                                    userid = "dongxue" }).code
            local s = assert(suite:jscode2session(code))
            assert.equal("wwRETAILCORP01", s.corpid)
            assert.equal("dongxue", s.userid)
            assert.matches("^wo%w+$", s.open_userid)
            assert.is_string(s.session_key)
            local _, err = suite:jscode2session(code)
            assert.equal(40029, err.errcode)
            assert.has_error(function() suite:jscode2session(42) end,
                "wecom.suite:jscode2session: js_code must be a non-empty string (got number 42)")
        end)
    end)

    describe("suite:unionid_to_external_userid_3rd()", function()
        it("lists the customer's ids in the corps that installed the app", function()
            sh.install(suite, "wwDOWNCORP01")
            local list = assert(suite:unionid_to_external_userid_3rd {
                unionid = "oUnion_wx_000001", openid = "oMini_000001" })
            assert.equal(1, #list)
            assert.equal("wwDOWNCORP01", list[1].corpid)
            local corp = assert(suite:corp("wwDOWNCORP01"))
            local new = assert(corp:get_new_external_userid { "wmDOWN01ext000001" })
            assert.equal(new.wmDOWN01ext000001, list[1].external_userid)
            local _, err = suite:unionid_to_external_userid_3rd { unionid = "oUnion_wx_000001", openid = "x" }
            assert.equal(40058, err.errcode)
            assert.has_error(function() suite:unionid_to_external_userid_3rd { unionid = "u" } end,
                "wecom.suite:unionid_to_external_userid_3rd: opts.openid is required (a non-empty string)")
        end)
    end)

    describe("wecom.provider", function()
        local provider, provider_sent

        before_each(function()
            provider = wecom.provider { corpid = fx.provider.corpid, provider_secret = fx.provider.provider_secret,
                                        base_url = info.base_url, ca_file = info.ca_file, retries = 0,
                                        store = wecom.store.file(sh.tmpdir()) }
            provider_sent = spy(provider.transport)
        end)

        it("corpid_to_opencorpid: a case-sensitive open corpid for an authorized corp", function()
            sh.install(suite, "wwRETAILCORP01")
            local open = assert(provider:corpid_to_opencorpid("wwRETAILCORP01"))
            assert.matches("^wp%w+$", open)
            assert.not_equal(open:lower(), open)
            local asked = sent_to(provider_sent, "/cgi-bin/service/corpid_to_opencorpid")
            assert.equal(assert(provider:token()), asked[1].query.provider_access_token)
            assert.is_nil(asked[1].query.access_token)
            local none, err = provider:corpid_to_opencorpid("wwRETAILCORP02")
            assert.is_nil(none)
            assert.equal(40013, err.errcode)
            assert.has_error(function() provider:corpid_to_opencorpid("") end,
                "wecom.provider:corpid_to_opencorpid: corpid must be a non-empty string (got empty string)")
        end)

        it("corpid_to_opencorpid: an answer without a usable open_corpid is a decode error", function()
            sh.install(suite, "wwRETAILCORP01")
            emu.fault { path = "/cgi-bin/service/corpid_to_opencorpid", count = 1,
                        body = '{"errcode":0,"errmsg":"ok","open_corpid":""}' }
            local none, err = provider:corpid_to_opencorpid("wwRETAILCORP01")
            assert.is_nil(none)
            assert.equal("decode", err.kind)
        end)

        it("finish_external_userid_migration", function()
            sh.install(suite, "wwRETAILCORP01")
            assert.is_true(provider:finish_external_userid_migration("wwRETAILCORP01"))
            local asked = sent_to(provider_sent, "/cgi-bin/service/externalcontact/finish_external_userid_migration")
            assert.equal("POST", asked[1].method)
            assert.is_string(asked[1].query.provider_access_token)
            local _, err = provider:finish_external_userid_migration("wwNOBODY")
            assert.equal(40013, err.errcode)
            assert.has_error(function() provider:finish_external_userid_migration() end,
                "wecom.provider:finish_external_userid_migration: corpid must be a non-empty string (got nil)")
        end)
    end)

    describe("a third-party app's corp client", function()
        local page = "https://patrol.example/page?x=1#frag"

        it("signs JSAPI pages with its corp's tickets, fetched with the corp token and never the suite's",
            function()
            local auth = sh.install(suite, "wwRETAILCORP01").auth
            local corp = assert(suite:corp("wwRETAILCORP01"))
            local conf = assert(corp:jsapi_config(page, { timestamp = 1700000000, nonce = "abc" }))
            local agent = assert(corp:agent_config(page, { timestamp = 1700000000, nonce = "abc" }))
            assert.equal("wwRETAILCORP01", conf.appId)
            assert.equal("wwRETAILCORP01", agent.corpid)
            assert.equal(auth.agentid, agent.agentid)
            assert.equal(1, calls(JSAPI_TICKET))
            assert.equal(1, calls(AGENT_TICKET))

            local corp_token, suite_token = assert(corp:token()), assert(suite:token())
            assert.not_equal(suite_token, corp_token)
            for _, path in ipairs { JSAPI_TICKET, AGENT_TICKET } do
                local asked = sent_to(sent, path)
                assert.equal(1, #asked)
                assert.equal(corp_token, asked[1].query.access_token)
                assert.is_nil(asked[1].query.suite_access_token)
                for _, v in pairs(asked[1].query) do
                    assert.not_equal(suite_token, v)
                end
            end
            -- the signatures are over the tickets the emulator gives the corp's token
            local _, t = emu.api("GET", JSAPI_TICKET, corp_token)
            assert.equal(jsapi.sign(t.ticket, "abc", 1700000000, page), conf.signature)
            local _, a = emu.api("GET", AGENT_TICKET, corp_token, { type = "agent_config" })
            assert.equal(jsapi.sign(a.ticket, "abc", 1700000000, page), agent.signature)
            -- and the suite token is no key to them
            local _, refused = emu.api("GET", JSAPI_TICKET, suite_token)
            assert.equal(40014, refused.errcode)
        end)

        it("caches the tickets per corp and app", function()
            local dk_suite = sh.ready(sh.new(info, fx, true, { store = suite.store }))
            for _, corpid in ipairs { "wwRETAILCORP01", "wwRETAILCORP02" } do
                sh.install(suite, corpid)
            end
            sh.install(dk_suite, "wwRETAILCORP01")
            local one = assert(suite:corp("wwRETAILCORP01"))
            local first = assert(one:agent_config(page, { timestamp = 1700000000, nonce = "abc" }))
            assert(one:jsapi_config(page))
            -- another client of the same corp and app: the cached tickets
            local again = assert(suite:corp("wwRETAILCORP01"))
            assert.same(first, assert(again:agent_config(page, { timestamp = 1700000000, nonce = "abc" })))
            assert(again:jsapi_config(page))
            assert.equal(1, calls(JSAPI_TICKET))
            assert.equal(1, calls(AGENT_TICKET))
            -- another corp, another app in the same corp: their own
            assert(assert(suite:corp("wwRETAILCORP02")):agent_config(page))
            local dk = assert(dk_suite:corp("wwRETAILCORP01"))
            local other = assert(dk:agent_config(page, { timestamp = 1700000000, nonce = "abc" }))
            assert.equal(3, calls(AGENT_TICKET))
            assert.not_equal(first.signature, other.signature)
            assert.not_equal(first.agentid, other.agentid)
        end)

        it("converts account ids with the corp's token", function()
            sh.install(suite, "wwRETAILCORP01")
            local corp = assert(suite:corp("wwRETAILCORP01"))
            local map, invalid = assert(corp:userid_to_openuserid { "qianwei", "nobody" })
            assert.same({ "nobody" }, invalid)
            -- the same open_userid getuserinfo3rd gives for the member
            local code = pv.ok_control("oauth_code", { suite_id = third.suite_id, corpid = "wwRETAILCORP01",
                                                       userid = "qianwei" }).code
            assert.equal(map.qianwei, assert(suite:user_by_code(code)).open_userid)
            local asked = sent_to(sent, "/cgi-bin/batch/userid_to_openuserid")
            assert.equal(assert(corp:token()), asked[1].query.access_token)

            sh.install(suite, "wwDOWNCORP01")
            local down = assert(suite:corp("wwDOWNCORP01"))
            local known = assert(down:unionid_to_external_userid {
                unionid = "oUnion_wx_000001", openid = "oMini_000001", subject_type = 1 })
            assert.equal(assert(down:get_new_external_userid { "wmDOWN01ext000001" }).wmDOWN01ext000001,
                known.external_userid)
            local pending = assert(down:unionid_to_external_userid {
                unionid = "oUnion_wx_000003", openid = "oMini_000003", subject_type = 1 })
            assert.is_string(pending.pending_id)
        end)

        it("keeps the corp's mass-call ticket, shared with a 代开发 client of the corp", function()
            local dk_suite = sh.ready(sh.new(info, fx, true, { store = suite.store }))
            sh.install(suite, "wwDOWNCORP01")
            sh.install(dk_suite, "wwDOWNCORP01")
            local corp = assert(suite:corp("wwDOWNCORP01"))
            local ticket = assert(corp:mass_call_ticket())
            assert.equal(ticket, assert(assert(dk_suite:corp("wwDOWNCORP01")):mass_call_ticket()))
            assert.equal(1, calls("/cgi-bin/corp/apply_mass_call_ticket"))
            assert(corp:unionid_to_external_userid { unionid = "oUnion_wx_000001", openid = "oMini_000001" })
            local asked = sent_to(sent, "/cgi-bin/idconvert/unionid_to_external_userid")
            assert.equal(1, #asked)
        end)

        it("has no corp forms of the user's identity: those are the suite's", function()
            sh.install(suite, "wwRETAILCORP01")
            local corp = assert(suite:corp("wwRETAILCORP01"))
            for _, name in ipairs { "oauth_url", "user_by_code", "jscode2session" } do
                assert.has_error(function() corp[name](corp, "x") end,
                    "wecom:" .. name .. ": a third-party app's users are the suite's: suite:" .. name
                    .. " (the corp forms are for self-built and 代开发 apps)")
            end
        end)
    end)

    describe("a 代开发 app's corp client", function()
        local dk_suite

        before_each(function()
            dk_suite = sh.ready(sh.new(info, fx, true, { retries = 0 }))
        end)

        it("signs JSAPI pages with the corp's tickets, fetched with its gettoken token", function()
            local auth = sh.install(dk_suite, "wwUPSTREAMCORP").auth
            local dk_sent = spy(dk_suite.transport)
            local corp = assert(dk_suite:corp("wwUPSTREAMCORP"))
            local page = "https://patrol.example/page"
            local conf = assert(corp:jsapi_config(page, { timestamp = 1700000000, nonce = "abc" }))
            local agent = assert(corp:agent_config(page, { timestamp = 1700000000, nonce = "abc" }))
            assert.equal(auth.agentid, agent.agentid)
            assert.equal(1, calls("/cgi-bin/gettoken"))
            assert.is_nil(emu.stats()["/cgi-bin/service/get_corp_token"])
            local token = assert(corp:token())
            for _, path in ipairs { JSAPI_TICKET, AGENT_TICKET } do
                local asked = sent_to(dk_sent, path)
                assert.equal(1, #asked)
                assert.equal(token, asked[1].query.access_token)
                assert.is_nil(asked[1].query.suite_access_token)
            end
            local _, t = emu.api("GET", JSAPI_TICKET, token)
            assert.equal(jsapi.sign(t.ticket, "abc", 1700000000, page), conf.signature)
            local _, a = emu.api("GET", AGENT_TICKET, token, { type = "agent_config" })
            assert.equal(jsapi.sign(a.ticket, "abc", 1700000000, page), agent.signature)
        end)

        it("uses the corp forms of the user's identity and converts its customers' ids", function()
            sh.install(dk_suite, "wwUPSTREAMCORP")
            local corp = assert(dk_suite:corp("wwUPSTREAMCORP"))
            local link = corp:oauth_url { redirect_uri = "https://patrol.example/cb", scope = "snsapi_privateinfo" }
            local q = wurl.parse_query(link:match("%?([^#]*)"))
            assert.equal("wwUPSTREAMCORP", q.appid)
            assert.equal(tostring(corp.agentid), q.agentid)
            local who = assert(corp:user_by_code(emu.oauth_code { userid = "zhangwei" }))
            assert.equal("zhangwei", who.userid)
            assert.equal(1, calls("/cgi-bin/auth/getuserinfo"))
            assert.is_nil(emu.stats()[GETUSERINFO3RD])

            local status, added = emu.request("POST", "/__emulator/customer", { body = {
                unionid = "oUnion_up_9", openid = "oMini_up_9", corpid = "wwUPSTREAMCORP" } })
            assert.equal(200, status)
            assert.equal(added.open_external_userid, assert(corp:to_service_external_userid(added.external_userid)))
            local opens = assert(corp:userid_to_openuserid { "zhangwei" })
            assert.matches("^wo%w+$", opens.zhangwei)
        end)
    end)
end)
