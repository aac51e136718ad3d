-- Typed contact and customer events, both forms, through the real crypto
-- and the router: spec/fixtures/events.lua's plaintexts are sealed as
-- WeCom would (the suite_id as receive id for the InfoType form at a 指令回调
-- URL, the corpid for the Event form), decrypted and dispatched.

local callback = require "wecom.callback"
local events = require "wecom.events"
local fx = require "fixtures.events"

local TOKEN = "eventsSpecToken"
local AES_KEY = "EvEnTsSpEcKeY0123456789abcdefghijklmnopqrst"

-- receive(xml, receive_id) -> the event cb:decrypt gives for what WeCom would POST
local function receive(xml, receive_id)
    local cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = receive_id }
    local body, query = assert(cb:encrypt_event(xml))
    return assert(cb:decrypt(query, body))
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    return keys
end

describe("typed events", function()
    it("covers every documented ChangeType with a fixture", function()
        for t, changes in pairs(events.CHANGE_TYPES) do
            local have = sorted_keys(fx.BODIES[t])
            local want = {}
            for i, c in ipairs(changes) do want[i] = c end
            table.sort(want)
            assert.same(want, have, t)
        end
    end)

    for _, t in ipairs(sorted_keys(events.CHANGE_TYPES)) do
        for _, change in ipairs(events.CHANGE_TYPES[t]) do
            it(t .. "." .. change .. ": the InfoType form at a suite's 指令回调 URL", function()
                local router = callback.router()
                local got
                router:on(t .. "." .. change, function(e) got = e end)
                router:on(t, function() error("the ChangeType handler should win") end)
                router:dispatch(receive(fx.info(t, change), fx.SUITE_ID))
                assert.is_table(got)
                assert.equal(t, got.type)
                assert.equal(t, got.InfoType)
                assert.equal(change, got.ChangeType)
                assert.equal(change, got.change)
                assert.equal("info", got.form)
                assert.equal(fx.SUITE_ID, got.suite_id)
                -- the encrypted corpid exactly as sent (case matters)
                assert.equal(fx.AUTH_CORPID, got.corpid)
                assert.equal(fx.TIME, got.time)
            end)

            it(t .. "." .. change .. ": the Event form at an app's URL", function()
                local router = callback.router()
                local got
                router:on(t, function(e) got = e end)
                router:dispatch(receive(fx.event(t, change), fx.CORPID))
                assert.equal(t, got.type)
                assert.equal("event", got.MsgType)
                assert.equal(change, got.ChangeType)
                assert.equal(change, got.change)
                assert.equal("event", got.form)
                assert.is_nil(got.suite_id)
                assert.equal(fx.CORPID, got.corpid)
                assert.equal("sys", got.userid)
            end)
        end
    end

    describe("change_contact's fields", function()
        it("splits departments, leaders and ExtAttr items; both forms alike", function()
            local both = { fx.info("change_contact", "create_user"), fx.event("change_contact", "create_user") }
            for _, xml in ipairs(both) do
                local router = callback.router()
                local got
                router:default(function(e) got = e end)
                router:dispatch(receive(xml, false))
                assert.equal("zhangsan", got.UserID)
                assert.same({ 1, 2, 3 }, got.departments)
                assert.same({ 1, 0, 0 }, got.is_leader_in_dept)
                assert.same({ "lisi", "wangwu" }, got.direct_leader)
                assert.equal(2, #got.ext_attr)
                assert.equal("爱好", got.ext_attr[1].Name)
                assert.equal("旅游", got.ext_attr[1].Text.Value)
                assert.equal("https://work.weixin.qq.com", got.ext_attr[2].Web.Url)
                -- the raw fields stay
                assert.equal("1,2,3", got.Department)
            end
        end)

        it("one ExtAttr item is a list of one; none is an empty list", function()
            local one = fx.event("change_contact", "update_user", { body = {
                { "UserID", "u1" }, { "ExtAttr", "<Item><Name>n</Name><Type>0</Type></Item>", raw = true } } })
            local e = events.decorate(receive(one, false))
            assert.equal(1, #e.ext_attr)
            assert.equal("n", e.ext_attr[1].Name)
            local none = events.decorate(receive(fx.event("change_contact", "delete_user"), false))
            assert.same({}, none.ext_attr)
            assert.same({}, none.departments)
        end)

        it("update_tag's member and party lists", function()
            local e = events.decorate(receive(fx.info("change_contact", "update_tag"), false))
            assert.same({ "zhangsan", "lisi" }, e.add_user_items)
            assert.same({ "zhangsan1", "lisi1" }, e.del_user_items)
            assert.same({ 1, 2 }, e.add_party_items)
            assert.same({ 3, 4 }, e.del_party_items)
        end)
    end)

    it("change_external_chat's member change list", function()
        local e = events.decorate(receive(fx.event("change_external_chat", "update"), false))
        assert.same({ "Jack", "Rose" }, e.mem_change_list)
        assert.equal("add_member", e.UpdateDetail)
        local one = fx.info("change_external_chat", "update", { body = {
            { "ChatId", "wr1" }, { "MemChangeList", "<Item>Solo</Item>", raw = true } } })
        assert.same({ "Solo" }, events.decorate(receive(one, false)).mem_change_list)
    end)

    it("change_external_contact keeps the customer's encrypted id exactly", function()
        local e = events.decorate(receive(fx.info("change_external_contact", "transfer_fail"), false))
        assert.equal("wmAbCdEfGhIjKlMnOp01", e.ExternalUserID)
        assert.equal("customer_refused", e.FailReason)
    end)

    it("a downstream corp's change at the upstream corp's URL names the downstream corp", function()
        -- doc 97213 §5: ToUserName is the downstream corpid, the member's id a
        -- ciphertext in 上下游; the receive id is still the upstream corp's
        local xml = fx.event("change_contact", "update_user", { to = "wwDOWNCORP01", body = {
            { "UserID", "woDownStreamCipherUser01" }, { "Department", "1" } } })
        local router = callback.router()
        local got
        router:on("change_contact.update_user", function(e) got = e end)
        router:dispatch(receive(xml, "wwUPSTREAMCORP"))
        assert.equal("wwDOWNCORP01", got.corpid)
        assert.equal("woDownStreamCipherUser01", got.UserID)
        assert.same({ 1 }, got.departments)
    end)

    it("change_editon (WeCom's spelling) goes by that name, the paying corp as corpid", function()
        local router = callback.router()
        local got
        router:on("change_editon", function(e) got = e end)
        router:dispatch(receive(fx.change_editon("wpPaidCorp01"), fx.SUITE_ID))
        assert.equal("change_editon", got.type)
        assert.equal("wpPaidCorp01", got.corpid)
        assert.equal("info", got.form)
    end)

    it("passes every other InfoType through by name, and unknown ones to the default", function()
        for _, name in ipairs(events.INFO_TYPES) do
            local router = callback.router()
            local got
            router:on(name, function(e) got = e end)
            router:default(function() error("not the default for " .. name) end)
            router:dispatch(receive(fx.plain(name), fx.SUITE_ID))
            assert.equal(name, got.type)
            assert.equal(fx.AUTH_CORPID, got.corpid)
        end
        local router = callback.router()
        local seen
        router:default(function(e) seen = e.type end)
        router:dispatch(receive(fx.plain("brand_new_info_type"), fx.SUITE_ID))
        assert.equal("brand_new_info_type", seen)
        assert.is_nil(callback.router():dispatch(receive(fx.plain("brand_new_info_type"), fx.SUITE_ID)))
    end)

    it("decorates once and leaves other events alone", function()
        local e = receive(fx.event("change_contact", "create_user"), false)
        events.decorate(e)
        e.departments = "mine"
        events.decorate(e)
        assert.equal("mine", e.departments)
        local other = events.decorate(receive(fx.plain("suite_ticket", { { "SuiteTicket", "t" } }), false))
        assert.is_nil(other.form)
        assert.is_nil(other.change)
        assert.same({ "a", "b" }, events.split(" a, ,b "))
        assert.same({}, events.split(nil))
    end)
end)
