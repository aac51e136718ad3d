-- The provider fixture beyond the bundled one: `--corps N` corps that can
-- install the bundled suites (and a share to all of them), a fixture of
-- one's own (a corp only the provider section knows), a fixture without a
-- provider, and provider sections that do not start.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"
local sh = require "helpers.sh"
local cjson = require "cjson"

local AES1 = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
local AES2 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"

local function base_fixture(provider)
    return {
        upstream = {
            corpid = "wwUPMINI", corp_name = "Mini Upstream",
            apps = { { agentid = 1000002, secret = "mini-system-secret", system = true,
                       callback = { token = "tok", aes_key = AES1 } } },
            users = { { userid = "boss", name = "Boss", department = { 1 } } },
        },
        provider = provider,
    }
end

local function write_fixture(t)
    local dir = sh.tmpdir("wecom-provider-fixture")
    local path = dir .. "/fixture.json"
    sh.write_file(path, cjson.encode(t))
    return path, dir
end

-- on(opts, fn): fn runs against an emulator started with opts (the
-- helpers' current one), stopped afterwards whatever happens
local function on(opts, fn)
    emu.start(opts)
    local ok, err = pcall(fn, emu.current())
    emu.stop()
    if not ok then
        error(err, 0)
    end
end

describe("emulator provider fixture", function()
    it("--corps N: the upstream and the N corps can install the bundled suites; a share reaches all N", function()
        on({ corps = 5 }, function(inst)
            local fx = inst:fixture()
            local ids = {}
            for _, c in ipairs(fx.provider.corps) do ids[#ids + 1] = c.corpid end
            assert.same({ "wwUPSTREAMCORP", "wwGEN000001", "wwGEN000002", "wwGEN000003", "wwGEN000004",
                          "wwGEN000005" }, ids)
            local bundled = cjson.decode((require "wecom.emulator.default_fixture")).provider
            assert.same(bundled.suites, fx.provider.suites)

            local third = pv.suite(fx, false)
            local up = pv.install(third, "wwUPSTREAMCORP")
            -- one as an admin installs it, the others by a share (to those without it)
            local direct = pv.install(third, "wwGEN000005", up.token)
            assert.is_nil(direct.answer.auth_info.agent[1].shared_from)
            local shared = pv.ok_control("share", { suite_id = third.suite_id, corpid = "wwUPSTREAMCORP" })
            assert.equal(5, #shared.events)
            assert.equal("share_chain_change", shared.events[5].info_type)
            local gen3 = shared.events[3]
            assert.equal("wwGEN000003", gen3.corpid)
            local data = pv.service("POST", "get_permanent_code", up.token, { auth_code = gen3.auth_code })
            assert.equal("wwGEN000003", data.auth_corp_info.corpid)
            local corp_token = pv.corp_token(third, up.token, "wwGEN000003", data.permanent_code)
            local _, user = inst:api("GET", "/cgi-bin/user/get", corp_token, { userid = "user3" })
            assert.equal(0, user.errcode)
            assert.equal("User 3", user.name)
        end)
    end)

    it("a fixture of one's own: a corp only the provider knows, its admins, both kinds of suite", function()
        local path, dir = write_fixture(base_fixture {
            corpid = "wwMYPROVIDER", provider_secret = "my-provider-secret",
            suites = {
                { suite_id = "wwMYSUITE", suite_secret = "my-suite-secret", name = "My Suite",
                  redirect_domain = "my.example.com", callback = { token = "st", aes_key = AES1 } },
                { suite_id = "dkMYTEMPLATE", suite_secret = "my-template-secret", customized = true,
                  callback = { token = "dt", aes_key = AES2 } },
            },
            corps = {
                { corpid = "wwUPMINI" },
                { corpid = "wwSHOP", corp_name = "The Shop", admins = { "amy" },
                  users = { { userid = "bob", name = "Bob" }, { userid = "amy", name = "Amy" } } },
            },
        })
        finally(function() sh.run("rm -rf " .. sh.quote(dir)) end)
        on({ fixture = path }, function(inst)
            local fx = inst:fixture()
            local dk = pv.suite(fx, true)
            assert.equal("dkMYTEMPLATE", dk.suite_id)
            local inst_dk = pv.install(dk, "wwSHOP")
            assert.equal("amy", inst_dk.answer.auth_user_info.userid)
            assert.equal("The Shop", inst_dk.answer.auth_corp_info.corp_name)
            local app_token = pv.corp_token(dk, inst_dk.token, "wwSHOP", inst_dk.permanent_code)
            local _, user = inst:api("GET", "/cgi-bin/user/get", app_token, { userid = "bob" })
            assert.equal(0, user.errcode)
            local third = pv.suite(fx, false)
            local event = pv.ticket(third)
            assert.equal("suite_ticket", assert(pv.decrypt(third, event)).InfoType)
            local provider_token = pv.service("POST", "get_provider_token", nil,
                { corpid = "wwMYPROVIDER", provider_secret = "my-provider-secret" }).provider_access_token
            assert.is_string(provider_token)
        end)
    end)

    it("a fixture without a provider: the provider paths answer as to a stranger", function()
        local path, dir = write_fixture(base_fixture(nil))
        finally(function() sh.run("rm -rf " .. sh.quote(dir)) end)
        on({ fixture = path }, function(inst)
            assert.equal(40083, pv.service("POST", "get_suite_token", nil,
                { suite_id = "wwSUITE", suite_secret = "x", suite_ticket = "y" }).errcode)
            assert.equal(40013, pv.service("POST", "get_provider_token", nil,
                { corpid = "wwP", provider_secret = "x" }).errcode)
            local status, data = pv.control("suite_ticket", { suite_id = "wwSUITE" })
            assert.equal(400, status)
            assert.matches("no provider", data.error)
            local _, _, res = inst:request("GET", "/3rdapp/install", { query = { suite_id = "wwSUITE" } })
            assert.matches('id="errcode">40083<', res.body)
            -- the corp's own APIs as ever
            local _, token = inst:request("GET", "/cgi-bin/gettoken",
                { query = { corpid = "wwUPMINI", corpsecret = "mini-system-secret" } })
            assert.equal(0, token.errcode)
        end)
    end)

    it("a provider section that is not right does not start, and says why", function()
        local suite = { suite_id = "wwS", suite_secret = "s", callback = { token = "t", aes_key = AES1 } }
        for _, c in ipairs {
            { { corpid = "wwP", suites = { suite } }, "provider.provider_secret" },
            { { corpid = "wwP", provider_secret = "x", suites = {} }, "provider.suites" },
            { { corpid = "wwP", provider_secret = "x",
                suites = { { suite_id = "dkX", suite_secret = "s", callback = suite.callback } } }, "customized" },
            { { corpid = "wwP", provider_secret = "x",
                suites = { { suite_id = "wwS", suite_secret = "s", callback = { token = "t", aes_key = "short" } } } },
              "aes_key" },
            { { corpid = "wwP", provider_secret = "x", suites = { suite, suite } }, "duplicate suite_id" },
            { { corpid = "wwP", provider_secret = "x", suites = { suite }, corps = { { corpid = "wwUPMINI" },
                { corpid = "wwUPMINI" } } }, "duplicate corp" },
            { { corpid = "wwP", provider_secret = "x", suites = { suite },
                corps = { { corpid = "wwUPMINI", admins = { "nobody" } } } }, "admins" },
        } do
            local path, dir = write_fixture(base_fixture(c[1]))
            local ok, err = pcall(emu.new, { fixture = path })
            sh.run("rm -rf " .. sh.quote(dir))
            if ok then
                err:stop()
            end
            assert.is_false(ok, c[2])
            assert.matches(c[2], tostring(err), 1, true)
        end
    end)
end)
