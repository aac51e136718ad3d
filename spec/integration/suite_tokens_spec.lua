-- Suite, corp and provider tokens against the emulator: tickets kept their
-- 30 minutes whatever token error happens, 40085 as one clear token error
-- (never asked again and again), 42009/40082 refreshed once, two suites in
-- one store that never mix, and no secret, ticket, token or permanent code
-- in any error.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"
local sh = require "helpers.suite"
local wecom = require "wecom"
local core = require "wecom.core"

local calls = emu.calls

local SUITE_TOKEN = "/cgi-bin/service/get_suite_token"
local CORP_TOKEN = "/cgi-bin/service/get_corp_token"
local PRE_AUTH = "/cgi-bin/service/get_pre_auth_code"

describe("wecom.suite tokens", function()
    local info, fx, third

    sh.hooks(function(...) info, fx, third = ... end)

    describe("the suite_ticket", function()
        it("outlives a token error: after 42009 and 40082 the same ticket gets a new suite token", function()
            local suite = sh.ready(sh.new(info, fx, false, { retries = 0 }))
            assert(suite:pre_auth_code())
            assert.equal(1, calls(SUITE_TOKEN))
            for n, code in ipairs { 42009, 40082 } do
                emu.fault { path = PRE_AUTH, count = 1, errcode = code }
                local pre = assert(suite:pre_auth_code())
                assert.is_string(pre)
                assert.equal(1 + n, calls(SUITE_TOKEN))
            end
        end)

        it("a suite token rejected twice in a row is one token error, not a loop", function()
            local suite = sh.ready(sh.new(info, fx, false, { retries = 0 }))
            emu.fault { path = PRE_AUTH, count = 5, errcode = 42009 }
            local pre, err = suite:pre_auth_code()
            assert.is_nil(pre)
            assert.equal("token", err.kind)
            assert.equal(42009, err.errcode)
            assert.equal(2, calls(PRE_AUTH))
            assert.equal(2, calls(SUITE_TOKEN))
        end)

        it("past its 30 minutes WeCom answers 40085: one clear token error, the ticket is not offered again",
            function()
            local suite = sh.ready(sh.new(info, fx, false, { retries = 0 }))
            assert(suite:token())
            -- the emulator's clock runs past the ticket and the suite token
            emu.advance(7201)
            local pre, err = suite:pre_auth_code()
            assert.is_nil(pre)
            assert.equal("token", err.kind)
            assert.equal(40085, err.errcode)
            assert.matches("rejected", err.errmsg)
            assert.matches("every 10 minutes", err.errmsg)
            assert.equal(2, calls(SUITE_TOKEN))
            -- asked again: answered here, WeCom is not asked with the same ticket
            for _ = 1, 3 do
                local again, aerr = suite:token()
                assert.is_nil(again)
                assert.equal(40085, aerr.errcode)
            end
            assert.equal(2, calls(SUITE_TOKEN))

            -- WeCom's next push cures it
            sh.push(suite, "suite_ticket")
            assert(suite:pre_auth_code())
            assert.equal(3, calls(SUITE_TOKEN))
        end)

        it("a late push of an older ticket does not replace a newer one", function()
            local suite = sh.ready(sh.new(info, fx, false))
            assert.is_false(suite:set_ticket("older-and-bogus", core.now() - 600))
            assert(suite:token())
            -- a newer one does replace it (and this one is no good)
            assert.is_true(suite:set_ticket("newer-and-bogus"))
            local tok, err = suite:token { force = true }
            assert.is_nil(tok)
            assert.equal(40085, err.errcode)
            assert.is_nil(tostring(err):find("newer-and-bogus", 1, true))
        end)

        it("a ticket issued more than 30 minutes ago is not kept", function()
            local suite = sh.new(info, fx, false)
            assert.is_false(suite:set_ticket(pv.ticket(third).suite_ticket, core.now() - 1801))
            local tok, err = suite:token()
            assert.is_nil(tok)
            assert.matches("no suite_ticket", err.errmsg)
        end)
    end)

    describe("corp tokens", function()
        it("40082 on get_corp_token refreshes the suite token once; twice is a token error", function()
            local suite = sh.ready(sh.new(info, fx, false, { retries = 0 }))
            sh.install(suite, "wwRETAILCORP01")
            local corp = assert(suite:corp("wwRETAILCORP01"))
            emu.fault { path = CORP_TOKEN, count = 1, errcode = 40082 }
            assert(corp:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
            assert.equal(2, calls(SUITE_TOKEN))
            assert.equal(2, calls(CORP_TOKEN))

            local other = assert(suite:corp("wwRETAILCORP01"))
            assert(other:token { force = true })
            emu.fault { path = CORP_TOKEN, count = 2, errcode = 40082 }
            local tok, err = other:token { force = true }
            assert.is_nil(tok)
            assert.equal("token", err.kind)
            assert.equal(40082, err.errcode)
        end)

        it("a rejected corp token is fetched again once (40014), the others of the suite stay", function()
            local suite = sh.ready(sh.new(info, fx, false, { retries = 0 }))
            sh.install(suite, "wwRETAILCORP01")
            sh.install(suite, "wwRETAILCORP02")
            local a = assert(suite:corp("wwRETAILCORP01"))
            local b = assert(suite:corp("wwRETAILCORP02"))
            local ta = assert(a:token())
            local tb = assert(b:token())
            assert.are_not.equal(ta, tb)
            emu.fault { path = "/cgi-bin/agent/get", count = 1, errcode = 40014 }
            assert(a:get("/cgi-bin/agent/get", { agentid = a.agentid }))
            assert.equal(3, calls(CORP_TOKEN))
            assert.equal(tb, (b:token()))
            assert.equal(3, calls(CORP_TOKEN))
        end)
    end)

    describe("two suites in one store", function()
        it("keep their tickets, tokens and permanent codes apart", function()
            local store = wecom.store.file(sh.tmpdir())
            local a = sh.new(info, fx, false, { store = store })
            local b = sh.new(info, fx, true, { store = store })
            sh.ready(a)
            -- a's ticket is not b's
            local none, err = b:token()
            assert.is_nil(none)
            assert.matches("no suite_ticket", err.errmsg)
            sh.ready(b)
            local ta, tb = assert(a:token()), assert(b:token())
            assert.are_not.equal(ta, tb)

            local auth_a = sh.install(a, "wwRETAILCORP01").auth
            local auth_b = sh.install(b, "wwRETAILCORP01").auth
            assert.are_not.equal(auth_a.permanent_code, auth_b.permanent_code)
            local ca, cb = assert(a:corp("wwRETAILCORP01")), assert(b:corp("wwRETAILCORP01"))
            assert.are_not.equal(ca:token(), cb:token())
            assert(ca:get("/cgi-bin/agent/get", { agentid = ca.agentid }))
            assert(cb:get("/cgi-bin/agent/get", { agentid = cb.agentid }))

            -- one uninstalls: the other keeps its authorization
            sh.push(a, "authorize", { corpid = "wwRETAILCORP01", action = "cancel" })
            assert.is_nil(a:corp("wwRETAILCORP01"))
            assert(b:corp("wwRETAILCORP01"))
            assert.is_nil(a:corps()())
            assert.equal("wwRETAILCORP01", b:corps()().corpid)
        end)

        it("corpids are kept as sent: no case folding", function()
            local suite = sh.ready(sh.new(info, fx, false))
            sh.install(suite, "wwRETAILCORP01")
            local none, err = suite:corp("WWRETAILCORP01")
            assert.is_nil(none)
            assert.equal("token", err.kind)
            none = suite:corp("wwretailcorp01")
            assert.is_nil(none)
            assert(suite:corp("wwRETAILCORP01"))
        end)
    end)

    describe("the provider", function()
        local function new_provider(extra)
            local opts = { corpid = fx.provider.corpid, provider_secret = fx.provider.provider_secret,
                base_url = info.base_url, ca_file = info.ca_file, retries = 0,
                store = wecom.store.file(sh.tmpdir()) }
            for k, v in pairs(extra or {}) do
                opts[k] = v
            end
            return wecom.provider(opts)
        end

        it("gets its token, the 代开发 QR link and open corpids; 42009 refreshes once", function()
            local provider = new_provider()
            assert.equal("wecom.provider(corpid=" .. fx.provider.corpid .. ")", tostring(provider))
            local tok, expires_at = assert(provider:token())
            assert.is_string(tok)
            assert.is_true(expires_at > core.now())
            local dk = pv.suite(fx, true)
            local link, until_at = assert(provider:customized_auth_url {
                templateid_list = { dk.suite_id }, state = "s1" })
            assert.matches("^https://", link)
            assert.is_true(until_at > core.now() + 86400)

            local suite = sh.ready(sh.new(info, fx, false))
            sh.install(suite, "wwRETAILCORP01")
            local open = assert(provider:corpid_to_opencorpid("wwRETAILCORP01"))
            assert.is_string(open)
            assert.are_not.equal("wwRETAILCORP01", open)

            emu.fault { path = "/cgi-bin/service/corpid_to_opencorpid", count = 1, errcode = 42009 }
            assert.equal(open, (provider:corpid_to_opencorpid("wwRETAILCORP01")))
            assert.equal(2, calls("/cgi-bin/service/get_provider_token"))
            local raw = assert(provider:post("/cgi-bin/service/corpid_to_opencorpid", { corpid = "wwRETAILCORP01" }))
            assert.equal(open, raw.open_corpid)
        end)

        it("a wrong secret is a token error that does not show it", function()
            local provider = new_provider { provider_secret = "wrong-provider-secret" }
            local tok, err = provider:token()
            assert.is_nil(tok)
            assert.equal("token", err.kind)
            assert.is_nil(tostring(err):find("wrong-provider-secret", 1, true))
        end)
    end)

    describe("no credential in any error", function()
        local function assert_clean(err, ...)
            local text = tostring(err)
            for i = 1, select("#", ...) do
                local secret = select(i, ...)
                assert.is_nil(text:find(secret, 1, true), "shows " .. secret .. ": " .. text)
                for _, v in pairs(err) do
                    if type(v) == "string" then
                        assert.is_nil(v:find(secret, 1, true))
                    end
                end
            end
        end

        it("a server echoing the suite secret and the ticket back", function()
            local suite = sh.new(info, fx, false, { retries = 0 })
            local ticket = pv.ticket(third).suite_ticket
            assert.is_true(suite:set_ticket(ticket))
            emu.fault { path = SUITE_TOKEN, count = 1, body = '{"errcode":40080,"errmsg":"got '
                .. third.suite_secret .. " and " .. ticket .. '"}' }
            local tok, err = suite:token()
            assert.is_nil(tok)
            assert.equal("token", err.kind)
            assert_clean(err, third.suite_secret, ticket)
        end)

        it("a server echoing a permanent code back (get_corp_token, 代开发 gettoken)", function()
            for _, customized in ipairs { false, true } do
                local suite = sh.ready(sh.new(info, fx, customized, { retries = 0 }))
                local auth = sh.install(suite, "wwRETAILCORP01").auth
                local path = customized and "/cgi-bin/gettoken" or CORP_TOKEN
                emu.fault { path = path, count = 1, body = '{"errcode":40084,"errmsg":"code '
                    .. auth.permanent_code .. ' is bad"}' }
                local corp = assert(suite:corp("wwRETAILCORP01"))
                local data, err = corp:get("/cgi-bin/agent/get", { agentid = corp.agentid })
                assert.is_nil(data)
                assert.equal("token", err.kind)
                assert.equal(40084, err.errcode)
                assert_clean(err, auth.permanent_code, pv.suite(fx, customized).suite_secret)
            end
        end)
    end)
end)
