-- bin/wecom's service-provider commands against the emulator: install-url
-- and authorized-corps, on the file token store a provider's server shares
-- (its suite_ticket, the permanent codes).

local wecom = require "wecom"
local emu = require "helpers.emulator"
local cli = require "helpers.cli"
local sh = require "helpers.sh"
local suites = require "helpers.suite"
local pv = require "helpers.provider"
local url = require "wecom.url"
local core = require "wecom.core"

local run, json = cli.run, cli.json

describe("wecom (provider commands)", function()
    local fx, system, info, third, dir, env, server

    emu.hooks(function(f, s, _, i)
        fx, system, info = f, s, i
        third = pv.suite(fx, false)
    end)
    before_each(function()
        dir = sh.tmpdir("wecom-cli-suite")
        -- the provider's server: a wecom.suite on the file store, which WeCom's
        -- suite_ticket push reached
        server = suites.new(info, fx, false, { store = wecom.store.file(dir .. "/store") })
        suites.ready(server)
        env = cli.env(info, fx, system, {
            WECOM_TOKEN_DIR = dir .. "/store",
            WECOM_SUITE_ID = third.suite_id, WECOM_SUITE_SECRET = third.suite_secret,
            WECOM_WEB_BASE_URL = info.base_url,
        })
    end)
    after_each(function()
        os.execute("rm -rf " .. sh.quote(dir))
        suites.cleanup()
    end)

    local function without(e, ...)
        local copy = {}
        for k, v in pairs(e) do
            copy[k] = v
        end
        for i = 1, select("#", ...) do
            copy[select(i, ...)] = nil
        end
        return copy
    end

    -- an admin confirming the install page for corpid: the redirect's query
    local function confirm(link, corpid)
        local path = link:sub(#info.base_url + 1) .. "&" .. url.encode_query { confirm = "1", corpid = corpid }
        local status, _, res = emu.request("GET", path)
        assert.equal(302, status, res.body)
        return url.parse_query(res.headers.location:match("%?(.*)$"))
    end

    it("install-url prints a link to WeCom's install page that installs once", function()
        local r = run({ "install-url", "--redirect-uri", "https://" .. third.install_domain .. "/installed",
                        "--state", "cli1", "--test" }, env)
        assert.equal(0, r.status, r.err)
        local link = r.out:match("^(%S+)\n$")
        assert.is_string(link, r.out)
        assert.equal(info.base_url .. "/3rdapp/install?", link:sub(1, #info.base_url + 16))
        local q = url.parse_query(link:match("%?(.*)$"))
        assert.equal(third.suite_id, q.suite_id)
        assert.equal("cli1", q.state)
        assert.equal("https://" .. third.install_domain .. "/installed", q.redirect_uri)
        assert.matches("one install, until %d+%-%d+%-%d+ [%d:]+ %(a test install%)", r.err)
        -- the page says it is a test install (set_session_info auth_type 1)
        local status, _, res = emu.request("GET", link:sub(#info.base_url + 1))
        assert.equal(200, status)
        assert.matches('data-auth-type="1"', res.body, 1, true)

        local back = confirm(link, "wwRETAILCORP01")
        assert.equal("cli1", back.state)
        -- the site behind redirect_uri exchanges the code
        local auth = assert(server:authorize(back.auth_code))
        assert.equal("wwRETAILCORP01", auth.corpid)
        -- one install per link
        local _, _, again = emu.request("GET", link:sub(#info.base_url + 1) .. "&confirm=1&corpid=wwRETAILCORP02")
        assert.matches("preauthcode校验失败", again.body, 1, true)
        assert.equal(1, emu.stats()["/cgi-bin/service/get_suite_token"])
    end)

    it("install-url --format json gives the link and when it expires; a formal install without --test", function()
        local r = run({ "install-url", "--redirect-uri", "https://" .. third.install_domain .. "/x",
                        "--format", "json" }, env)
        assert.equal(0, r.status, r.err)
        local got = json(r)
        assert.equal(info.base_url .. "/3rdapp/install?", got.url:sub(1, #info.base_url + 16))
        local left = got.expires_at - core.now()
        assert.is_true(left > 1100 and left <= 1201, tostring(left))
        assert.is_nil(emu.stats()["/cgi-bin/service/set_session_info"])
        local status, _, res = emu.request("GET", got.url:sub(#info.base_url + 1))
        assert.equal(200, status)
        assert.matches('data-auth-type="0"', res.body, 1, true)
    end)

    it("authorized-corps lists the corps whose permanent code the store holds, never the code", function()
        local empty = run({ "authorized-corps", "--format", "json" }, env)
        assert.equal(0, empty.status, empty.err)
        assert.same({}, json(empty))

        local e1 = suites.install(server, "wwRETAILCORP01", { state = "shop1" })
        local e2 = suites.install(server, "wwRETAILCORP02")
        local r = run({ "authorized-corps", "--format", "json" }, env)
        assert.equal(0, r.status, r.err)
        local rows = json(r)
        table.sort(rows, function(a, b) return a.corpid < b.corpid end)
        assert.equal(2, #rows)
        assert.equal("wwRETAILCORP01", rows[1].corpid)
        assert.equal("上海静安优品便利店有限公司", rows[1].corp_name)
        assert.equal(e1.auth.agentid, rows[1].agentid)
        assert.equal("shop1", rows[1].state)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", rows[1].installed_at)
        assert.equal("wwRETAILCORP02", rows[2].corpid)
        for _, e in ipairs { e1, e2 } do
            assert.is_nil(r.out:find(e.auth.permanent_code, 1, true))
        end

        local t = run({ "authorized-corps" }, env)
        assert.equal(0, t.status, t.err)
        assert.matches("^corpid%s+corp_name%s+agentid%s+state%s+installed_at\n", t.out)
        assert.matches("wwRETAILCORP01%s+上海静安优品便利店有限公司%s+%d+%s+shop1", t.out)
        local c = run({ "authorized-corps", "--format", "csv" }, env)
        assert.matches("^corpid,corp_name,agentid,state,installed_at\r?\n", c.out)
    end)

    it("authorized-corps --check gets each corp's token, reports a failing one, exits 1", function()
        suites.install(server, "wwRETAILCORP01")
        suites.install(server, "wwRETAILCORP02")
        emu.fault { path = "/cgi-bin/service/get_corp_token", errcode = 48004 }
        local bad = run({ "authorized-corps", "--check", "--concurrency", "1", "--format", "json" }, env)
        assert.equal(1, bad.status, bad.err)
        local failed = 0
        for _, row in ipairs(json(bad)) do
            if row.status ~= "ok" then
                failed = failed + 1
                assert.equal("token", row.status)
                assert.matches("48004", row.error)
            end
        end
        assert.equal(1, failed)
        assert.matches("1 of 2 corps failed", bad.err)

        -- again: the failed corp gets its token now, the other one's is kept
        local r = run({ "authorized-corps", "--check", "--format", "json" }, env)
        assert.equal(0, r.status, r.err)
        local rows = json(r)
        assert.equal(2, #rows)
        for _, row in ipairs(rows) do
            assert.equal("ok", row.status)
            assert.is_true(row.expires_in > 7000 and row.expires_in <= 7200)
        end
        assert.equal(3, emu.stats()["/cgi-bin/service/get_corp_token"])
        -- the tokens the CLI kept in the store (the server reads the same
        -- ones, fetching none) appear nowhere in what was printed
        for _, row in ipairs(rows) do
            local token = assert(assert(server:corp(row.corpid)):token())
            assert.is_nil((r.out .. r.err):find(token, 1, true))
        end
        assert.equal(3, emu.stats()["/cgi-bin/service/get_corp_token"])
    end)

    it("says the suite_ticket is missing when the store has none (exit 11)", function()
        for _, extra in ipairs { { "--no-token-cache" }, { "--token-dir", dir .. "/other" } } do
            local args = { "install-url", "--redirect-uri", "https://" .. third.install_domain .. "/x" }
            for _, a in ipairs(extra) do
                args[#args + 1] = a
            end
            local r = run(args, env)
            assert.equal(11, r.status, r.err)
            assert.matches("wecom install%-url: .*suite_ticket", r.err)
            assert.equal("", r.out)
        end
    end)

    it("never shows the suite secret, even when WeCom refuses it", function()
        local wrong = "WrongSuiteSecret0000000000000000000000000x"
        local e = without(env, "WECOM_SUITE_SECRET")
        e.WECOM_SUITE_SECRET = wrong
        local r = run({ "install-url", "--redirect-uri", "https://" .. third.install_domain .. "/x" }, e)
        assert.equal(11, r.status, r.err)
        assert.is_nil((r.out .. r.err):find(wrong, 1, true))
        assert.is_nil((r.out .. r.err):find(third.suite_secret, 1, true))
    end)

    it("needs the suite's settings; the secret never comes from the command line", function()
        local r = run({ "authorized-corps" }, without(env, "WECOM_SUITE_SECRET"))
        assert.equal(3, r.status)
        assert.matches("suite_secret is not set %(WECOM_SUITE_SECRET, `suite_secret =` in the config file%)", r.err)
        r = run({ "authorized-corps" }, without(env, "WECOM_SUITE_ID"))
        assert.equal(3, r.status)
        assert.matches("suite_id is not set %(WECOM_SUITE_ID, %-%-suite%-id,", r.err)
        r = run({ "authorized-corps", "--suite-secret", "x" }, env)
        assert.equal(2, r.status)
        r = run({ "install-url" }, env)
        assert.equal(2, r.status)
        assert.matches("missing %-%-redirect%-uri URL", r.err)
        r = run({ "install-url", "--redirect-uri", "www.example.com/x" }, env)
        assert.equal(2, r.status)
        r = run({ "install-url", "--redirect-uri", "https://x.example.com/", "--state", "not ok" }, env)
        assert.equal(2, r.status)
        for _, name in ipairs { "install-url", "authorized-corps" } do
            local h = run({ name, "--help" }, env)
            assert.equal(0, h.status)
            assert.matches("^usage: wecom " .. name:gsub("%-", "%%-"), h.out)
            assert.matches("WECOM_SUITE_ID", h.out)
        end
    end)

    it("takes the suite from a private config file profile, --suite-id on top", function()
        local file = dir .. "/config"
        sh.write_file(file, "[provider]\nsuite_id = wwNOSUCHSUITE\nsuite_secret = " .. third.suite_secret
            .. "\nweb_base_url = " .. info.base_url .. "\n")
        os.execute("chmod 600 " .. sh.quote(file))
        local e = without(env, "WECOM_SUITE_ID", "WECOM_SUITE_SECRET", "WECOM_WEB_BASE_URL")
        suites.install(server, "wwRETAILCORP01")
        local r = run({ "authorized-corps", "--config", file, "--profile", "provider", "--suite-id", third.suite_id,
                        "--format", "json" }, e)
        assert.equal(0, r.status, r.err)
        assert.equal("wwRETAILCORP01", json(r)[1].corpid)
        os.execute("chmod 644 " .. sh.quote(file))
        r = run({ "authorized-corps", "--config", file, "--profile", "provider" }, e)
        assert.equal(3, r.status)
        assert.matches("chmod 600", r.err)
    end)
end)
