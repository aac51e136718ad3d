-- A fleet of processes on one shared store: 8 processes x 200 calls, started
-- together on a cold store, make exactly one gettoken at the emulator (the
-- DESIGN bar).  The first gettoken is slowed down so that every process
-- arrives while it is still in flight.

local emu = require "helpers.emulator"
local redis_server = require "helpers.redis"
local child = require "helpers.child"
local sh = require "helpers.sh"

local PROCESSES, CALLS = 8, 200
local WORKER = "spec/helpers/fleet_worker.lua"
local REDIS_PASSWORD = "fleet-pass"

describe("a fleet of processes on a shared store", function()
    local env, app_def, corpid, root

    setup(function()
        env = emu.start()
        local fixture = emu.fixture()
        corpid = fixture.upstream.corpid
        app_def = emu.fixture_app(fixture, false) or fixture.upstream.apps[1]
    end)

    teardown(function() emu.stop() end)

    before_each(function()
        emu.reset()
        root = sh.tmpdir("wecom-fleet")
    end)

    after_each(function() os.execute("rm -rf " .. child.quote(root)) end)

    -- Runs the fleet; returns the workers' report lines.
    local function run_fleet(kind, store_arg, password)
        local start_file = root .. "/start"
        local kids, reports = {}, {}
        for i = 1, PROCESSES do
            kids[i] = child.spawn_script(WORKER, {
                kind, store_arg, password or "", env.base_url, env.ca_file, corpid,
                app_def.agentid, CALLS, start_file,
            }, { WECOM_FLEET_SECRET = app_def.secret })
        end
        for i = 1, PROCESSES do
            assert.equal("ready", kids[i]:line())
        end
        emu.fault{ path = "/cgi-bin/gettoken", count = 1, delay_ms = 300 }
        local f = assert(io.open(start_file, "w"))
        f:close()
        for i = 1, PROCESSES do
            reports[i] = kids[i]:wait():gsub("%s+$", "")
        end
        return reports
    end

    local function assert_fleet(reports)
        local want = "ok=" .. CALLS .. " failed=0"
        for i = 1, PROCESSES do
            assert.equal(want, reports[i])
        end
        local stats = emu.stats()
        assert.equal(PROCESSES * CALLS, stats["/cgi-bin/agent/get"])
        assert.equal(1, stats["/cgi-bin/gettoken"])
    end

    it("makes exactly one gettoken with a cold file store", function()
        assert_fleet(run_fleet("file", root .. "/tokens"))
    end)

    describe("with a cold Redis store", function()
        local srv

        setup(function() srv = redis_server.start{ password = REDIS_PASSWORD } end)
        teardown(function() if srv then srv:destroy() end end)

        it("makes exactly one gettoken", function()
            assert_fleet(run_fleet("redis", srv.port, REDIS_PASSWORD))
        end)
    end)

    it("still answers API calls while Redis is down, with one gettoken", function()
        emu.reset()
        -- the fallback is the process-wide cache: start it cold for this app
        require("wecom.core").token_delete(require("wecom.token").app_key(corpid, app_def.agentid, app_def.secret,
            env.base_url))
        local wecom = require "wecom"
        local app = wecom.new{
            corpid = corpid, secret = app_def.secret, agentid = app_def.agentid,
            base_url = env.base_url, ca_file = env.ca_file,
            store = wecom.store.redis{ port = 1, password = REDIS_PASSWORD },
        }
        for _ = 1, 3 do
            local data, err = app:get("/cgi-bin/agent/get", { agentid = app.agentid })
            assert.is_nil(err)
            assert.equal(0, data.errcode)
        end
        local stats = emu.stats()
        assert.equal(3, stats["/cgi-bin/agent/get"])
        -- the token was fetched directly once and kept in the process
        assert.equal(1, stats["/cgi-bin/gettoken"])
    end)
end)
