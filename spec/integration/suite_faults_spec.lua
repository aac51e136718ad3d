-- What a server hands a suite is data, never trusted: broken answers of the
-- service endpoints are decode errors and keep nothing; an exchange whose
-- follow-up fails keeps the permanent code all the same; a spent or unknown
-- AuthCode is an api error; transient failures of reads are retried.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"
local sh = require "helpers.suite"

local S = "/cgi-bin/service/"

describe("wecom.suite against a misbehaving server", function()
    local info, fx

    emu.hooks(function(f, _, _, i)
        fx, info = f, i
    end)
    after_each(sh.cleanup)

    local function auth_code(suite, corpid)
        return pv.ok_control("authorize", { suite_id = suite.suite_id, corpid = corpid or "wwRETAILCORP01",
            action = "create" }).auth_code
    end

    it("a permanent-code answer without a code or a corpid is a decode error, nothing is kept", function()
        local suite = sh.ready(sh.new(info, fx, false, { retries = 0 }))
        local bodies = {
            '{"errcode":0,"auth_corp_info":{"corpid":"wwRETAILCORP01"}}',
            '{"errcode":0,"permanent_code":"","auth_corp_info":{"corpid":"wwRETAILCORP01"}}',
            '{"errcode":0,"permanent_code":"pc","auth_corp_info":{}}',
            '{"errcode":0,"permanent_code":"pc","auth_corp_info":{"corpid":"ww\\nX"}}',
            '{"errcode":0,"permanent_code":' .. ('"' .. ("p"):rep(600) .. '"') .. ',"auth_corp_info":{"corpid":"wwX"}}',
            '<html>bad gateway</html>',
            '[]',
        }
        for _, body in ipairs(bodies) do
            emu.fault { path = S .. "v2/get_permanent_code", count = 1, body = body }
            local auth, err = suite:authorize("any-code")
            assert.is_nil(auth, body)
            assert.equal("decode", err.kind, body)
        end
        assert.is_nil(suite:corps()())
    end)

    it("a spent, unknown or other suite's AuthCode is an api error", function()
        local suite = sh.ready(sh.new(info, fx, false))
        local code = auth_code(suite)
        assert(suite:authorize(code))
        local again, err = suite:authorize(code)
        assert.is_nil(again)
        assert.equal("api", err.kind)
        assert.equal(40078, err.errcode)
        local _, unknown = suite:authorize("no-such-code")
        assert.equal(40078, unknown.errcode)
        -- the 代开发 template's code is not the third-party suite's
        local dk = sh.ready(sh.new(info, fx, true))
        local _, other = suite:authorize(auth_code(dk, "wwRETAILCORP02"))
        assert.equal(40078, other.errcode)
    end)

    it("the AuthCode is never sent twice: a timeout of the exchange is not retried", function()
        local suite = sh.ready(sh.new(info, fx, false, { retries = 2, timeout = 1, backoff = 0 }))
        emu.fault { path = S .. "v2/get_permanent_code", count = 1, delay_ms = 1500 }
        local auth, err = suite:authorize(auth_code(suite))
        assert.is_nil(auth)
        assert.equal("timeout", err.kind)
        assert.equal(1, emu.stats()[S .. "v2/get_permanent_code"])
    end)

    it("keeps the permanent code when get_auth_info fails after the exchange; corp() completes it", function()
        local suite = sh.ready(sh.new(info, fx, false, { retries = 0 }))
        emu.fault { path = S .. "get_auth_info", count = 1, errcode = -1 }
        local auth = assert(suite:authorize(auth_code(suite)))
        assert.equal("busy", auth.error.kind)
        assert.is_string(auth.permanent_code)
        assert.is_nil(auth.agentid)
        assert.equal("wwRETAILCORP01", suite:corps()().corpid)
        -- the details are read when the corp is used
        local corp = assert(suite:corp("wwRETAILCORP01"))
        assert.is_number(corp.agentid)
        assert(corp:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
        assert.equal(corp.agentid, suite:corps()().agentid)
    end)

    it("a busy get_auth_info is retried (a read)", function()
        local suite = sh.ready(sh.new(info, fx, false, { retries = 2, backoff = 0 }))
        emu.fault { path = S .. "get_auth_info", count = 2, errcode = -1 }
        local auth = assert(suite:authorize(auth_code(suite)))
        assert.is_nil(auth.error)
        assert.is_number(auth.agentid)
        assert.equal(3, emu.stats()[S .. "get_auth_info"])
    end)

    it("broken token answers are decode errors and are not cached", function()
        local suite = sh.ready(sh.new(info, fx, false, { retries = 0 }))
        local bodies = {
            '{"suite_access_token":"","expires_in":7200}',
            '{"suite_access_token":"t"}',
            -- (0 is a token in its last second, usable: issue 10 item 3)
            '{"suite_access_token":"t","expires_in":-1}',
            '{"suite_access_token":"t","expires_in":99999999}',
            '<html></html>',
        }
        for _, body in ipairs(bodies) do
            emu.fault { path = S .. "get_suite_token", count = 1, body = body }
            local tok, err = suite:token()
            assert.is_nil(tok, body)
            assert.equal("decode", err.kind, body)
        end
        assert.is_string((suite:token()))

        sh.install(suite, "wwRETAILCORP01")
        local corp = assert(suite:corp("wwRETAILCORP01"))
        emu.fault { path = S .. "get_corp_token", count = 1, body = '{"access_token":"","expires_in":7200}' }
        local tok, err = corp:token()
        assert.is_nil(tok)
        assert.equal("decode", err.kind)
        assert(corp:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
    end)

    it("a pre_auth_code answer without an expiry is a decode error; install_url makes no link then", function()
        local suite = sh.ready(sh.new(info, fx, false, { retries = 0 }))
        emu.fault { path = S .. "get_pre_auth_code", count = 1, body = '{"errcode":0,"pre_auth_code":"x"}' }
        local link, err = suite:install_url { redirect_uri = "https://www.example.com/" }
        assert.is_nil(link)
        assert.equal("decode", err.kind)
        -- set_session_info failing: no link either
        emu.fault { path = S .. "set_session_info", count = 1, errcode = 40077 }
        link, err = suite:install_url { redirect_uri = "https://www.example.com/", test = true }
        assert.is_nil(link)
        assert.equal(40077, err.errcode)
    end)

    it("a store that fails: receive returns the store error with the event, the ticket is not lost later", function()
        local store = require("wecom").store.file(sh.tmpdir())
        local broken = setmetatable({ set = function() return nil, "disk full" end }, { __index = store })
        local suite = sh.new(info, fx, false, { store = broken })
        local posted = pv.ticket(pv.suite(fx, false))
        local event, err = suite:receive(posted.query, posted.body)
        assert.is_nil(event)
        assert.equal("store", err.kind)
        assert.equal("suite_ticket", err.event.type)
        -- the same store working again takes the next push
        local healthy = sh.new(info, fx, false, { store = store })
        assert(healthy:receive(posted.query, posted.body))
        assert(healthy:token())
    end)
end)
