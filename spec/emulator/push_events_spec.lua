-- POST /__emulator/push for the contact and customer events: a suite's
-- InfoType form at its 指令回调 URL, the Event form at a 数据回调 or 代开发 URL,
-- an upstream app receiving a downstream corp's change, nested fields, the
-- URL check of a provider URL.  The receiver echoes what it got; the spec
-- reads it with wecom.callback (the receive ids of reference §3.1) and
-- routes it with the router.

local emu = require "helpers.emulator"
local nginx = require "helpers.nginx"
local pv = require "helpers.provider"
local cjson = require "cjson"
local callback = require "wecom.callback"

local RECEIVER = nginx.conf { servers = { { text = nginx.echo_location("/hook") } } }

describe("emulator push: typed events", function()
    local fx, system, third, dk, site, url

    pv.hooks(function(f, t, d)
        fx, third, dk = f, t, d
        system = emu.fixture_app(fx, true)
        site = nginx.start { conf = RECEIVER }
        url = site:url("/hook")
    end)

    teardown(function()
        if site then site:stop() end
    end)

    -- what the receiver got, decrypted with settings/receive_id and dispatched
    local function received(answer, settings, receive_id)
        assert.equal(200, answer.status)
        local got = cjson.decode(answer.body)
        local cb = callback.new { token = settings.token, aes_key = settings.aes_key, receive_id = receive_id }
        local event = assert(cb:decrypt(got.args, got.body))
        local router = callback.router()
        local handled
        router:default(function(e) handled = e end)
        router:dispatch(event)
        return handled, got
    end

    it("a suite's InfoType change_contact at its 指令回调 URL, suite_id as receive id", function()
        local answer = emu.push { url = url, suite_id = third.suite_id, info_type = "change_contact",
            corpid = "wwRETAILCORP01", fields = {
                ChangeType = "create_user", UserID = "qianwei", Department = "1,2",
                ExtAttr = { Item = { { Name = "爱好", Type = 0, Text = { Value = "旅游" } },
                                     { Name = "主页", Type = 1, Web = { Url = "https://x.example" } } } },
            } }
        local e, got = received(answer, third.callback, third.suite_id)
        assert.matches("<ToUserName><!%[CDATA%[" .. third.suite_id .. "%]%]></ToUserName>", got.body)
        assert.equal("change_contact", e.type)
        assert.equal("info", e.form)
        assert.equal("create_user", e.change)
        assert.equal(third.suite_id, e.suite_id)
        assert.equal("wwRETAILCORP01", e.corpid)
        assert.same({ 1, 2 }, e.departments)
        assert.equal(2, #e.ext_attr)
        assert.equal("旅游", e.ext_attr[1].Text.Value)
        assert.equal("https://x.example", e.ext_attr[2].Web.Url)
        -- another receive id refuses it (-40005)
        local cb = callback.new { token = third.callback.token, aes_key = third.callback.aes_key,
                                  receive_id = "wwRETAILCORP01" }
        local none, err = cb:decrypt(got.args, got.body)
        assert.is_nil(none)
        assert.equal(-40005, err.code)
    end)

    it("the Event form for a corp that installed the suite: its corpid inside, its agentid", function()
        local inst = pv.install(dk, "wwRETAILCORP01")
        local answer = emu.push { url = url, suite_id = dk.suite_id, corpid = "wwRETAILCORP01",
            event = "change_external_contact", fields = {
                ChangeType = "add_external_contact", UserID = "qianwei", ExternalUserID = "wmCaseSensitive01",
                State = "s", WelcomeCode = "w" } }
        local e = received(answer, dk.callback, "wwRETAILCORP01")
        assert.equal("change_external_contact", e.type)
        assert.equal("event", e.form)
        assert.equal("add_external_contact", e.change)
        assert.equal("wwRETAILCORP01", e.corpid)
        assert.equal(inst.agentid, e.agentid)
        assert.equal("wmCaseSensitive01", e.ExternalUserID)
    end)

    it("a downstream corp's change at the upstream app's URL: ToUserName the downstream corp", function()
        local answer = emu.push { url = url, event = "change_contact", to_user = "wwDOWNCORP01",
            fields = { ChangeType = "update_user", UserID = "woCipherOfLina", Department = "1" } }
        local e = received(answer, system.callback, fx.upstream.corpid)
        assert.equal("change_contact", e.type)
        assert.equal("update_user", e.change)
        assert.equal("wwDOWNCORP01", e.corpid)
        assert.equal("woCipherOfLina", e.UserID)
    end)

    it("change_external_chat's repeated members; change_editon by its name", function()
        local inst = pv.install(third, "wwRETAILCORP01")
        assert(inst)
        local answer = emu.push { url = url, suite_id = third.suite_id, info_type = "change_external_chat",
            corpid = "wwRETAILCORP01", fields = { ChangeType = "update", ChatId = "wrC1",
                UpdateDetail = "add_member", MemChangeList = { Item = { "Jack", "Rose" } } } }
        local e = received(answer, third.callback, third.suite_id)
        assert.same({ "Jack", "Rose" }, e.mem_change_list)
        local editon = emu.push { url = url, suite_id = third.suite_id, info_type = "change_editon",
            fields = { PaidCorpId = "wwRETAILCORP01" } }
        local ed = received(editon, third.callback, third.suite_id)
        assert.equal("change_editon", ed.type)
        assert.equal("wwRETAILCORP01", ed.corpid)
    end)

    it("the URL check of a suite's URL carries the provider's corpid", function()
        local answer = emu.push { url = url, suite_id = third.suite_id, verify = true }
        local got = cjson.decode(answer.body)
        assert.equal("GET", got.method)
        local cb = callback.new { token = third.callback.token, aes_key = third.callback.aes_key,
                                  receive_id = fx.provider.corpid }
        assert.equal(answer.echostr, assert(cb:verify_url(got.args)))
        local by_suite = callback.new { token = third.callback.token, aes_key = third.callback.aes_key,
                                        receive_id = third.suite_id }
        local _, err = by_suite:verify_url(got.args)
        assert.equal(-40005, err.code)
    end)

    it("refuses what cannot be pushed", function()
        local function status(body)
            body.url = body.url or url
            return (emu.request("POST", "/__emulator/push", { body = body }))
        end
        assert.equal(400, status { info_type = "change_contact" })
        assert.equal(400, status { suite_id = "wwNOSUCH", info_type = "change_contact" })
        assert.equal(400, status { suite_id = third.suite_id, event = "change_contact" })
        assert.equal(400, status { suite_id = third.suite_id, event = "change_contact", corpid = "wwRETAILCORP02" })
        assert.equal(400, status { suite_id = third.suite_id, info_type = "x", agentid = 1 })
        assert.equal(400, status { suite_id = third.suite_id, info_type = "x", event = "y" })
        assert.equal(400, status { event = "x", fields = { ["bad name"] = "v" } })
        assert.equal(400, status { event = "x", fields = { A = { { "nested list" } } } })
        assert.equal(400, status { event = "x", fields = { A = true } })
        assert.equal(400, status { event = "x", fields = { "a list" } })
    end)
end)
