-- The provider side of the emulator at the HTTP level: tickets, suite and
-- provider tokens, installs and their permanent codes, authorized corps'
-- tokens on the ordinary endpoints, cancel and re-install, 代开发 secrets,
-- shares to downstream corps, token kinds that do not mix.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"
local nginx = require "helpers.nginx"
local cjson = require "cjson"
local wurl = require "wecom.url"

-- A receiver for the 指令回调 POSTs: answers with what it got, as JSON.
local RECEIVER = nginx.conf {
    lua_path = "${lua_path}",
    servers = { { text = nginx.echo_location("/cmd") } },
}

-- an authorize step the emulator refuses: HTTP 400 and why
local function refused(suite, corpid, action, why)
    local status, data = pv.control("authorize", { suite_id = suite.suite_id, corpid = corpid, action = action })
    assert.equal(400, status)
    assert.matches(why, data.error)
end

describe("emulator providers", function()
    local fx, third, dk

    pv.hooks(function(f, t, d)
        fx, third, dk = f, t, d
    end)

    describe("the fixture", function()
        it("has a provider with a third-party suite, a 代开发 template and installable corps", function()
            assert.equal("wwPROVIDERCORP", fx.provider.corpid)
            assert.is_string(fx.provider.provider_secret)
            assert.is_false(third.customized)
            assert.is_true(dk.customized)
            assert.equal("dk", dk.suite_id:sub(1, 2))
            local ids = {}
            for _, c in ipairs(fx.provider.corps) do ids[#ids + 1] = c.corpid end
            assert.same({ "wwUPSTREAMCORP", "wwDOWNCORP01", "wwDOWNCORP02", "wwRETAILCORP01", "wwRETAILCORP02" }, ids)
        end)
    end)

    describe("suite tickets", function()
        it("each push carries a new ticket, encrypted with the suite_id as receive id", function()
            local a, b = pv.ticket(third), pv.ticket(third)
            assert.is_true(a.ok)
            assert.equal(1800, a.expires_in)
            assert.not_equal(a.suite_ticket, b.suite_ticket)
            assert.is_string(a.query.msg_signature)
            assert.matches("^%d+$", a.query.timestamp)
            assert.matches("^%d+$", a.query.nonce)
            -- envelope of a 指令回调 POST: ToUserName = SuiteId, AgentID empty
            assert.matches("<ToUserName><!%[CDATA%[" .. third.suite_id .. "%]%]></ToUserName>", a.body)
            assert.matches("<AgentID><!%[CDATA%[%]%]></AgentID>", a.body)
            local event = assert(pv.decrypt(third, a))
            assert.equal("suite_ticket", event.InfoType)
            assert.equal(third.suite_id, event.SuiteId)
            assert.equal(a.suite_ticket, event.SuiteTicket)
            assert.equal(a.plaintext, event.xml)
            assert.matches("^<xml><SuiteId>", a.plaintext)
            assert.is_nil(a.plaintext:find("ToUserName", 1, true))
            -- the provider's corpid is the receive id of URL checks only
            local _, err = pv.decrypt(third, a, fx.provider.corpid)
            assert.equal("callback", err.kind)
            assert.equal(-40005, err.code)
        end)

        it("a ticket gets the suite token; the same token while it is valid, whatever valid ticket", function()
            local t1 = pv.ticket(third).suite_ticket
            local token, data = pv.suite_token(third, t1)
            assert.equal(7200, data.expires_in)
            -- documented without errcode on success
            assert.is_nil(data.errcode)
            assert.is_nil(data.errmsg)
            local again = pv.suite_token(third, pv.ticket(third).suite_ticket)
            assert.equal(token, again)
            assert.equal(token, pv.suite_token(third, t1))
        end)

        it("a ticket of another suite is 40085", function()
            local t = pv.ticket(dk).suite_ticket
            local data = pv.service("POST", "get_suite_token", nil,
                { suite_id = third.suite_id, suite_secret = third.suite_secret, suite_ticket = t })
            assert.equal(40085, data.errcode)
            assert.matches("^invalid suite ticket", data.errmsg)
        end)

        it("POSTs to url and adds the receiver's status and reply", function()
            local site = nginx.start { conf = RECEIVER }
            finally(function() site:stop() end)
            local ev = pv.ticket(third, { url = "http://127.0.0.1:" .. site.port .. "/cmd?from=emu" })
            assert.equal(200, ev.status)
            local got = cjson.decode(ev.reply)
            assert.equal("POST", got.method)
            assert.equal(ev.body, got.body)
            assert.equal("emu", got.args.from)
            assert.equal(ev.query.msg_signature, got.args.msg_signature)
            assert.equal(ev.query.timestamp, got.args.timestamp)
            assert.equal(ev.query.nonce, got.args.nonce)
            local event = assert(pv.decrypt(third, { query = got.args, body = got.body }))
            assert.equal(ev.suite_ticket, event.SuiteTicket)
        end)

        it("reports a receiver that is not there", function()
            local ev = pv.ticket(third, { url = "http://127.0.0.1:9/cmd" })
            assert.is_nil(ev.status)
            assert.is_string(ev.error)
            assert.is_string(ev.suite_ticket)
        end)
    end)

    describe("an install announced by create_auth", function()
        it("exchanges the AuthCode once for the permanent code, the corp's token works on its APIs", function()
            local token = pv.suite_token(third)
            local ev = pv.authorize(third, "wwRETAILCORP01", "create", { state = "fromMarket1" })
            assert.equal("create", ev.action)
            local event = assert(pv.decrypt(third, ev))
            assert.equal("create_auth", event.InfoType)
            assert.equal(ev.auth_code, event.AuthCode)
            assert.equal("fromMarket1", event.State)
            assert.is_nil(event.AuthCorpId)

            local data = pv.service("POST", "get_permanent_code", token, { auth_code = ev.auth_code })
            assert.equal(0, data.errcode)
            assert.is_string(data.permanent_code)
            assert.equal("fromMarket1", data.state)
            assert.equal("wwRETAILCORP01", data.auth_corp_info.corpid)
            assert.equal("上海静安优品便利店有限公司", data.auth_corp_info.corp_name)
            assert.equal("verified", data.auth_corp_info.corp_type)
            assert.equal("qianwei", data.auth_user_info.userid)
            assert.equal("钱伟", data.auth_user_info.name)
            assert.matches("^wo", data.auth_user_info.open_userid)
            local agent = data.auth_info.agent[1]
            assert.equal(ev.agentid, agent.agentid)
            assert.equal(third.name, agent.name)
            assert.is_false(agent.is_customized_app)
            assert.is_nil(agent.shared_from)
            assert.same({ 1 }, agent.privilege.allow_party)
            -- a third-party install comes with the corp's token
            assert.is_string(data.access_token)
            assert.equal(7200, data.expires_in)

            -- single use
            local again = pv.service("POST", "get_permanent_code", token, { auth_code = ev.auth_code })
            assert.equal(40078, again.errcode)

            local corp = pv.service("POST", "get_corp_token", token,
                { auth_corpid = "wwRETAILCORP01", permanent_code = data.permanent_code })
            assert.equal(data.access_token, corp.access_token)
            assert.is_nil(corp.errcode)
            local _, user = emu.api("GET", "/cgi-bin/user/get", corp.access_token, { userid = "dongxue" })
            assert.equal(0, user.errcode)
            assert.equal("董雪", user.name)
            local _, app = emu.api("GET", "/cgi-bin/agent/get", corp.access_token, { agentid = ev.agentid })
            assert.equal(0, app.errcode)
            assert.equal(third.name, app.name)
            assert.equal(2, #app.allow_userinfos.user)
            local _, ticket = emu.api("GET", "/cgi-bin/get_jsapi_ticket", corp.access_token)
            assert.equal(0, ticket.errcode)

            -- v1 and v2 get_auth_info
            local info = pv.service("POST", "get_auth_info", token,
                { auth_corpid = "wwRETAILCORP01", permanent_code = data.permanent_code })
            assert.equal(0, info.errcode)
            assert.same(data.auth_info, info.auth_info)
            assert.same(data.auth_corp_info, info.auth_corp_info)
            local info2 = pv.service("POST", "v2/get_auth_info", token,
                { auth_corpid = "wwRETAILCORP01", permanent_code = data.permanent_code })
            assert.equal(0, info2.errcode)
            assert.same({ name_list = {} }, info2.auth_corp_info.corp_ex_name)
            assert.equal(ev.agentid, info2.auth_info.agent[1].agentid)
        end)

        it("v2/get_permanent_code answers the short form", function()
            local token = pv.suite_token(third)
            local ev = pv.authorize(third, "wwRETAILCORP01", "create", { userid = "dongxue" })
            local data = pv.service("POST", "v2/get_permanent_code", token, { auth_code = ev.auth_code })
            assert.equal(0, data.errcode)
            assert.is_string(data.permanent_code)
            assert.same({ corpid = "wwRETAILCORP01", corp_name = "上海静安优品便利店有限公司" }, data.auth_corp_info)
            assert.equal("dongxue", data.auth_user_info.userid)
            assert.is_nil(data.auth_info)
            assert.is_nil(data.access_token)
            assert.is_nil(data.state)
            assert.is_string(pv.service("POST", "get_corp_token", token,
                { auth_corpid = "wwRETAILCORP01", permanent_code = data.permanent_code }).access_token)
        end)

        it("change_auth: the new range shows in get_auth_info and on the corp's APIs", function()
            local inst = pv.install(third, "wwRETAILCORP01")
            local corp_token = pv.corp_token(third, inst.token, "wwRETAILCORP01", inst.permanent_code)
            local ev = pv.authorize(third, "wwRETAILCORP01", "change",
                { privilege = { allow_party = {}, allow_user = { "dongxue" } } })
            local event = assert(pv.decrypt(third, ev))
            assert.equal("change_auth", event.InfoType)
            assert.equal("wwRETAILCORP01", event.AuthCorpId)
            assert.is_nil(ev.auth_code)
            local info = pv.service("POST", "get_auth_info", inst.token,
                { auth_corpid = "wwRETAILCORP01", permanent_code = inst.permanent_code })
            assert.same({ "dongxue" }, info.auth_info.agent[1].privilege.allow_user)
            assert.same({}, info.auth_info.agent[1].privilege.allow_party)
            local _, user = emu.api("GET", "/cgi-bin/user/get", corp_token, { userid = "qianwei" })
            assert.equal(60011, user.errcode)
            local _, app = emu.api("GET", "/cgi-bin/agent/get", corp_token, { agentid = inst.agentid })
            assert.same({ { userid = "dongxue" } }, app.allow_userinfos.user)
        end)

        it("cancel_auth: the token is unknown, the permanent code dead; a re-install starts afresh", function()
            local inst = pv.install(third, "wwRETAILCORP01")
            local corp_token = pv.corp_token(third, inst.token, "wwRETAILCORP01", inst.permanent_code)
            local ev = pv.authorize(third, "wwRETAILCORP01", "cancel")
            local event = assert(pv.decrypt(third, ev))
            assert.equal("cancel_auth", event.InfoType)
            assert.equal("wwRETAILCORP01", event.AuthCorpId)

            local _, user = emu.api("GET", "/cgi-bin/user/get", corp_token, { userid = "qianwei" })
            assert.equal(40014, user.errcode)
            for _, name in ipairs { "get_corp_token", "get_auth_info", "v2/get_auth_info" } do
                local data = pv.service("POST", name, inst.token,
                    { auth_corpid = "wwRETAILCORP01", permanent_code = inst.permanent_code })
                assert.equal(48004, data.errcode, name)
            end
            -- nothing left to cancel or change
            refused(third, "wwRETAILCORP01", "cancel", "has not installed")

            local again = pv.install(third, "wwRETAILCORP01", inst.token)
            assert.not_equal(inst.permanent_code, again.permanent_code)
            assert.not_equal(inst.agentid, again.agentid)
            local new_token = pv.corp_token(third, inst.token, "wwRETAILCORP01", again.permanent_code)
            assert.not_equal(corp_token, new_token)
            local _, user2 = emu.api("GET", "/cgi-bin/user/get", new_token, { userid = "qianwei" })
            assert.equal(0, user2.errcode)
            -- the old permanent code stays dead
            assert.equal(40084, pv.service("POST", "get_corp_token", inst.token,
                { auth_corpid = "wwRETAILCORP01", permanent_code = inst.permanent_code }).errcode)
        end)

        it("an AuthCode of a cancelled install is no good", function()
            local token = pv.suite_token(third)
            local ev = pv.authorize(third, "wwRETAILCORP02", "create")
            pv.authorize(third, "wwRETAILCORP02", "cancel")
            assert.equal(40078, pv.service("POST", "get_permanent_code", token, { auth_code = ev.auth_code }).errcode)
        end)

        it("a second create for an installed corp is refused", function()
            pv.install(third, "wwRETAILCORP01")
            refused(third, "wwRETAILCORP01", "create", "installed already")
        end)

        it("an AuthCode is the suite's own", function()
            local ev = pv.authorize(third, "wwRETAILCORP01", "create")
            local dk_token = pv.suite_token(dk)
            assert.equal(40078,
                pv.service("POST", "get_permanent_code", dk_token, { auth_code = ev.auth_code }).errcode)
            -- and still good for its suite
            local data = pv.service("POST", "get_permanent_code", pv.suite_token(third), { auth_code = ev.auth_code })
            assert.equal(0, data.errcode)
        end)

        it("admin lists: the old one with the suite token, the new one with the app's token", function()
            local inst = pv.install(third, "wwRETAILCORP01")
            local old = pv.service("POST", "get_admin_list", inst.token,
                { auth_corpid = "wwRETAILCORP01", agentid = inst.agentid })
            assert.equal(0, old.errcode)
            assert.equal(1, #old.admin)
            assert.equal("qianwei", old.admin[1].userid)
            assert.equal(1, old.admin[1].auth_type)
            assert.equal(inst.answer.auth_user_info.open_userid, old.admin[1].open_userid)
            assert.equal(40056, pv.service("POST", "get_admin_list", inst.token,
                { auth_corpid = "wwRETAILCORP01", agentid = inst.agentid + 1 }).errcode)
            local corp_token = pv.corp_token(third, inst.token, "wwRETAILCORP01", inst.permanent_code)
            local _, new = emu.request("POST", "/cgi-bin/agent/get_admin_list",
                { query = { access_token = corp_token }, raw_body = "" })
            assert.equal(0, new.errcode)
            assert.same({ { userid = "qianwei", auth_type = 1 } }, new.admin)
            -- a self-built app has none
            local _, mine = emu.request("POST", "/cgi-bin/agent/get_admin_list",
                { query = { access_token = emu.app_token() }, raw_body = "" })
            assert.equal(48002, mine.errcode)
        end)
    end)

    describe("代开发", function()
        it("the permanent code is the app's secret; reset_permanent_code rotates it", function()
            local token = pv.suite_token(dk)
            local inst = pv.install(dk, "wwRETAILCORP02", token)
            -- no token in a 代开发 install's answer; marked customized
            assert.is_nil(inst.answer.access_token)
            assert.is_true(inst.answer.auth_info.agent[1].is_customized_app)
            local old_secret = inst.permanent_code
            local app_token = pv.corp_token(dk, token, "wwRETAILCORP02", old_secret)
            local _, user = emu.api("GET", "/cgi-bin/user/get", app_token, { userid = "fengtao" })
            assert.equal(0, user.errcode)
            -- the suite token does not get it a token
            assert.equal(48002, pv.service("POST", "get_corp_token", token,
                { auth_corpid = "wwRETAILCORP02", permanent_code = old_secret }).errcode)
            -- the secret belongs to that corp only
            local _, other = emu.request("GET", "/cgi-bin/gettoken",
                { query = { corpid = "wwRETAILCORP01", corpsecret = old_secret } })
            assert.equal(40001, other.errcode)

            local ev = pv.authorize(dk, "wwRETAILCORP02", "reset")
            local event = assert(pv.decrypt(dk, ev))
            assert.equal("reset_permanent_code", event.InfoType)
            assert.equal(ev.auth_code, event.AuthCode)
            assert.is_nil(event.AuthCorpId)
            -- the old secret is dead at once
            local _, stale = emu.request("GET", "/cgi-bin/gettoken",
                { query = { corpid = "wwRETAILCORP02", corpsecret = old_secret } })
            assert.equal(40001, stale.errcode)
            local data = pv.service("POST", "get_permanent_code", token, { auth_code = ev.auth_code })
            assert.equal(0, data.errcode)
            assert.not_equal(old_secret, data.permanent_code)
            assert.equal("wwRETAILCORP02", data.auth_corp_info.corpid)
            local _, fresh = emu.request("GET", "/cgi-bin/gettoken",
                { query = { corpid = "wwRETAILCORP02", corpsecret = data.permanent_code } })
            assert.equal(0, fresh.errcode)
            assert.equal(0, pv.service("POST", "get_auth_info", token,
                { auth_corpid = "wwRETAILCORP02", permanent_code = data.permanent_code }).errcode)
        end)

        it("reset is for 代开发 templates only", function()
            pv.install(third, "wwRETAILCORP01")
            refused(third, "wwRETAILCORP01", "reset", "代开发")
        end)

        it("a 代开发 app in the upstream corp is a self-built app to the upstream APIs", function()
            local inst = pv.install(dk, "wwUPSTREAMCORP")
            local app_token = pv.corp_token(dk, inst.token, "wwUPSTREAMCORP", inst.permanent_code)
            local _, shares = emu.api("POST", "/cgi-bin/corpgroup/corp/list_app_share_info", app_token,
                { agentid = inst.agentid, business_type = 1 })
            assert.equal(0, shares.errcode)
            assert.same({}, shares.corp_list)
            local _, chains = emu.api("GET", "/cgi-bin/corpgroup/corp/get_chain_list", app_token)
            assert.equal(0, chains.errcode)
        end)
    end)

    describe("sharing a third-party app", function()
        it("installs it in each downstream corp: create_auth each, then share_chain_change", function()
            local up = pv.install(third, "wwUPSTREAMCORP")
            local up_token = pv.corp_token(third, up.token, "wwUPSTREAMCORP", up.permanent_code)
            local res = pv.ok_control("share", { suite_id = third.suite_id, corpid = "wwUPSTREAMCORP",
                to = { "wwDOWNCORP01", "wwDOWNCORP02" } })
            assert.equal(1, res.business_type)
            assert.equal(3, #res.events)
            local agentids = {}
            for i, corpid in ipairs { "wwDOWNCORP01", "wwDOWNCORP02" } do
                local ev = res.events[i]
                assert.equal(corpid, ev.corpid)
                local event = assert(pv.decrypt(third, ev))
                assert.equal("create_auth", event.InfoType)
                assert.equal(ev.auth_code, event.AuthCode)
                local data = pv.service("POST", "get_permanent_code", up.token, { auth_code = ev.auth_code })
                assert.equal(0, data.errcode)
                assert.equal(corpid, data.auth_corp_info.corpid)
                -- no installing admin for a share; where it came from instead
                assert.is_nil(data.auth_user_info)
                assert.same({ corpid = "wwUPSTREAMCORP", share_type = 1 }, data.auth_info.agent[1].shared_from)
                agentids[corpid] = data.auth_info.agent[1].agentid
                local down_token = pv.corp_token(third, up.token, corpid, data.permanent_code)
                local _, app = emu.api("GET", "/cgi-bin/agent/get", down_token, { agentid = agentids[corpid] })
                assert.equal(0, app.errcode)
            end
            local last = assert(pv.decrypt(third, res.events[3]))
            assert.equal("share_chain_change", last.InfoType)
            assert.equal("wwUPSTREAMCORP", last.CorpId)
            assert.equal(up.agentid, tonumber(last.AgentId))

            local _, list = emu.api("POST", "/cgi-bin/corpgroup/corp/list_app_share_info", up_token,
                { agentid = up.agentid, business_type = 1 })
            assert.equal(0, list.errcode)
            assert.equal(1, list.ending)
            assert.same({
                { corpid = "wwDOWNCORP01", corp_name = "北京海淀星辰商贸有限公司", agentid = agentids.wwDOWNCORP01 },
                { corpid = "wwDOWNCORP02", corp_name = "北京朝阳恒信贸易有限公司", agentid = agentids.wwDOWNCORP02 },
            }, list.corp_list)
            local _, page = emu.api("POST", "/cgi-bin/corpgroup/corp/list_app_share_info", up_token,
                { agentid = up.agentid, business_type = 1, limit = 1 })
            assert.equal(0, page.ending)
            assert.equal(1, #page.corp_list)
            local _, linked = emu.api("POST", "/cgi-bin/corpgroup/corp/list_app_share_info", up_token,
                { agentid = up.agentid, business_type = 0 })
            assert.same({}, linked.corp_list)

            -- a downstream corp that uninstalls leaves the list
            pv.authorize(third, "wwDOWNCORP02", "cancel")
            local _, after = emu.api("POST", "/cgi-bin/corpgroup/corp/list_app_share_info", up_token,
                { agentid = up.agentid, business_type = 1 })
            assert.equal(1, #after.corp_list)
            assert.equal("wwDOWNCORP01", after.corp_list[1].corpid)
        end)

        it("shares to every downstream corp by default; 企业互联 sends share_agent_change", function()
            local up = pv.install(third, "wwUPSTREAMCORP")
            local res = pv.ok_control("share", { suite_id = third.suite_id, corpid = "wwUPSTREAMCORP",
                business_type = 0 })
            assert.equal(#fx.downstream + 1, #res.events)
            assert.equal("share_agent_change", assert(pv.decrypt(third, res.events[#res.events])).InfoType)
            local up_token = pv.corp_token(third, up.token, "wwUPSTREAMCORP", up.permanent_code)
            local _, list = emu.api("POST", "/cgi-bin/corpgroup/corp/list_app_share_info", up_token,
                { agentid = up.agentid, business_type = 0 })
            assert.equal(#fx.downstream, #list.corp_list)
        end)

        it("refuses what is not a share", function()
            local cases = {
                { { suite_id = third.suite_id, corpid = "wwUPSTREAMCORP" }, "has the suite installed" },
                { { suite_id = dk.suite_id, corpid = "wwUPSTREAMCORP" }, "third%-party" },
                { { suite_id = "wwNOPE", corpid = "wwUPSTREAMCORP" }, "suite_id" },
            }
            for _, c in ipairs(cases) do
                local status, data = pv.control("share", c[1])
                assert.equal(400, status)
                assert.matches(c[2], data.error)
            end
            pv.install(third, "wwUPSTREAMCORP")
            for _, body in ipairs {
                { suite_id = third.suite_id, corpid = "wwUPSTREAMCORP", to = { "wwNOSUCH" } },
                { suite_id = third.suite_id, corpid = "wwUPSTREAMCORP", to = { "wwUPSTREAMCORP" } },
                { suite_id = third.suite_id, corpid = "wwUPSTREAMCORP", to = "wwDOWNCORP01" },
                { suite_id = third.suite_id, corpid = "wwUPSTREAMCORP", business_type = 2 },
                { suite_id = third.suite_id, corpid = "wwUPSTREAMCORP", url = "ftp://x" },
            } do
                local status = pv.control("share", body)
                assert.equal(400, status, cjson.encode(body))
            end
        end)
    end)

    describe("token kinds", function()
        it("suite, provider and corp tokens do not stand in for each other", function()
            local suite_token = pv.suite_token(third)
            local provider_token = pv.provider_token(fx)
            local inst = pv.install(third, "wwUPSTREAMCORP", suite_token)
            local corp_token = pv.corp_token(third, suite_token, "wwUPSTREAMCORP", inst.permanent_code)
            local app_token = emu.app_token()
            -- as access_token: 40014
            for _, t in ipairs { suite_token, provider_token } do
                local _, d = emu.api("GET", "/cgi-bin/user/get", t, { userid = "zhangwei" })
                assert.equal(40014, d.errcode)
            end
            -- as suite_access_token: 40082
            for _, t in ipairs { provider_token, corp_token, app_token, "nonsense" } do
                assert.equal(40082, pv.service("GET", "get_pre_auth_code", t).errcode)
            end
            -- as provider_access_token: 40082
            for _, t in ipairs { suite_token, corp_token, "nonsense" } do
                assert.equal(40082, pv.service("POST", "corpid_to_opencorpid", t, { corpid = "wwUPSTREAMCORP" },
                    "provider_access_token").errcode)
            end
            -- a suite token of one suite naming another suite: 48003
            local named = { suite_id = dk.suite_id, auth_corpid = "wwUPSTREAMCORP",
                            permanent_code = inst.permanent_code }
            assert.equal(48003, pv.service("POST", "get_auth_info", suite_token, named).errcode)
            named.suite_id = third.suite_id
            assert.equal(0, pv.service("POST", "get_auth_info", suite_token, named).errcode)
        end)

        it("a third-party app's corp token: list_app_share_info yes; chain, linkedcorp, corp/gettoken no", function()
            local inst = pv.install(third, "wwUPSTREAMCORP")
            local corp_token = pv.corp_token(third, inst.token, "wwUPSTREAMCORP", inst.permanent_code)
            local _, share = emu.api("POST", "/cgi-bin/corpgroup/corp/list_app_share_info", corp_token,
                { agentid = inst.agentid })
            assert.equal(0, share.errcode)
            local _, chains = emu.api("GET", "/cgi-bin/corpgroup/corp/get_chain_list", corp_token)
            assert.equal(48002, chains.errcode)
            local _, linked = emu.api("POST", "/cgi-bin/linkedcorp/agent/get_perm_list", corp_token, {})
            assert.equal(48002, linked.errcode)
            local _, down = emu.api("POST", "/cgi-bin/corpgroup/corp/gettoken", corp_token,
                { corpid = "wwDOWNCORP01", agentid = 1000011, business_type = 1 })
            assert.equal(48002, down.errcode)
            -- another corp's install is not an upstream token at all
            local other = pv.install(third, "wwRETAILCORP01", inst.token)
            local other_token = pv.corp_token(third, inst.token, "wwRETAILCORP01", other.permanent_code)
            local _, no = emu.api("POST", "/cgi-bin/corpgroup/corp/list_app_share_info", other_token,
                { agentid = other.agentid })
            assert.equal(40014, no.errcode)
        end)
    end)

    describe("provider endpoints", function()
        it("get_provider_token, corpid_to_opencorpid, get_customized_auth_url", function()
            local token = pv.provider_token(fx)
            assert.equal(token, pv.provider_token(fx))
            pv.install(third, "wwRETAILCORP01")
            local d = pv.service("POST", "corpid_to_opencorpid", token, { corpid = "wwRETAILCORP01" },
                "provider_access_token")
            assert.equal(0, d.errcode)
            assert.matches("^wp%w+$", d.open_corpid)
            -- encrypted corpids are case-sensitive: both cases in there
            assert.matches("%u", d.open_corpid:sub(3))
            assert.matches("%l", d.open_corpid:sub(3))
            assert.equal(d.open_corpid, pv.service("POST", "corpid_to_opencorpid", token,
                { corpid = "wwRETAILCORP01" }, "provider_access_token").open_corpid)
            -- only corps that authorized one of the provider's apps
            assert.equal(40013, pv.service("POST", "corpid_to_opencorpid", token,
                { corpid = "wwRETAILCORP02" }, "provider_access_token").errcode)

            local qr = pv.service("POST", "get_customized_auth_url", token,
                { templateid_list = { dk.suite_id }, state = "abc123" }, "provider_access_token")
            assert.equal(0, qr.errcode)
            assert.matches("^https://", qr.qrcode_url)
            assert.equal(864000, qr.expires_in)
        end)

        it("a scanned QR code is an authorize create with its state", function()
            local token = pv.suite_token(dk)
            local ev = pv.authorize(dk, "wwRETAILCORP01", "create", { state = "qr42" })
            local data = pv.service("POST", "get_permanent_code", token, { auth_code = ev.auth_code })
            assert.equal("qr42", data.state)
        end)
    end)

    describe("the install page's redirect", function()
        it("carries auth_code, expires_in=600 and the state; no create_auth is pushed", function()
            local token = pv.suite_token(third)
            local pre = pv.service("GET", "get_pre_auth_code", token)
            local status, _, res = emu.request("POST", "/3rdapp/install", {
                raw_body = wurl.encode_query { suite_id = third.suite_id, pre_auth_code = pre.pre_auth_code,
                    redirect_uri = "https://" .. third.install_domain .. "/installed", state = "s1",
                    corpid = "wwRETAILCORP02" },
                headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
            assert.equal(302, status)
            local q = wurl.parse_query(res.headers.location)
            assert.equal("600", q.expires_in)
            assert.equal("s1", q.state)
            local data = pv.service("POST", "get_permanent_code", token, { auth_code = q.auth_code })
            assert.equal(0, data.errcode)
            assert.equal("wwRETAILCORP02", data.auth_corp_info.corpid)
            assert.equal("fengtao", data.auth_user_info.userid)
            assert.equal("s1", data.state)
        end)
    end)
end)
