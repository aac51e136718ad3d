-- bin/wecom's shared-app commands against the emulator: shared-corps,
-- token-check, and the file token store that lets cron runs share tokens.

local emu = require "helpers.emulator"
local cli = require "helpers.cli"
local sh = require "helpers.sh"

local run, json = cli.run, cli.json

describe("wecom (shared-app commands)", function()
    local fx, system, info, env, tokens

    cli.hooks("wecom-cli-tokens", "/store", function(...) env, tokens, fx, system, info = ... end)

    -- the fixture's confirmed shares of the system app for a business type
    local function shares(business_type)
        local out = {}
        for _, d in ipairs(fx.downstream) do
            for _, a in ipairs(d.agents or {}) do
                if a.shared_from == system.agentid and a.business_type == business_type and a.confirmed ~= false then
                    out[d.corpid] = a.agentid
                end
            end
        end
        return out
    end

    local function count(t)
        local n = 0
        for _ in pairs(t) do
            n = n + 1
        end
        return n
    end

    it("shared-corps lists the corps of a business type with the app's agentid there", function()
        for _, bt in ipairs { 0, 1 } do
            local want = shares(bt)
            local list = json(run({ "shared-corps", "--business-type", tostring(bt), "--format", "json" }, env))
            assert.equal(count(want), #list)
            for _, corp in ipairs(list) do
                assert.equal(want[corp.corpid], corp.agentid)
                assert.is_string(corp.corp_name)
            end
        end
        local one = json(run({ "shared-corps", "--business-type", "1", "--corp", "wwDOWNCORP02", "--format",
                               "json" }, env))
        assert.equal(1, #one)
        assert.equal("wwDOWNCORP02", one[1].corpid)
    end)

    it("token-check gets each downstream token and prints none of them", function()
        local r = run({ "token-check", "--business-type", "1", "--verify", "--format", "json" }, env)
        assert.equal(0, r.status, r.err)
        local rows = json(r)
        assert.equal(count(shares(1)), #rows)
        for _, row in ipairs(rows) do
            assert.equal("ok", row.status)
            assert.is_true(row.expires_in > 7000 and row.expires_in <= 7200)
        end
        assert.equal(#rows, emu.stats()["/cgi-bin/corpgroup/corp/gettoken"])
        assert.equal(#rows, emu.stats()["/cgi-bin/agent/get"])
        -- no token of the store's files appears in what was printed
        local files = sh.capture("cat " .. sh.quote(tokens .. "/store") .. "/*.tok")
        local n = 0
        for token in files:gmatch("\n([%w_%-]+)") do
            n = n + 1
            assert.is_nil((r.out .. r.err):find(token, 1, true))
        end
        assert.is_true(n >= #rows)
    end)

    it("reports a corp whose token fails, goes on with the others, exits 1", function()
        emu.fault { path = "/cgi-bin/corpgroup/corp/gettoken", errcode = 48002 }
        local r = run({ "token-check", "--business-type", "1", "--concurrency", "1", "--format", "json" }, env)
        assert.equal(1, r.status)
        local failed = 0
        for _, row in ipairs(json(r)) do
            if row.status ~= "ok" then
                failed = failed + 1
                assert.matches("48002", row.error)
            end
        end
        assert.equal(1, failed)
        assert.matches("1 of %d+ corps failed", r.err)
    end)

    it("shares tokens between runs through the file store (a cron job asks once)", function()
        for _ = 1, 3 do
            assert.equal(0, run({ "token-check", "--business-type", "1" }, env).status)
        end
        local stats = emu.stats()
        assert.equal(1, stats["/cgi-bin/gettoken"])
        assert.equal(count(shares(1)), stats["/cgi-bin/corpgroup/corp/gettoken"])
        assert.equal("700", sh.mode(tokens .. "/store"))
        -- --no-token-cache: this process only
        assert.equal(0, run({ "chains", "--no-token-cache" }, env).status)
        assert.equal(2, emu.stats()["/cgi-bin/gettoken"])
    end)

    it("keeps the token store under XDG_CACHE_HOME by default", function()
        local e = cli.env(info, fx, system, { XDG_CACHE_HOME = tokens })
        assert.equal(0, run({ "chains" }, e).status)
        assert.equal(0, run({ "chains" }, e).status)
        assert.equal(1, emu.stats()["/cgi-bin/gettoken"])
        assert.equal("700", sh.mode(tokens .. "/wecom/tokens"))
    end)
end)
