-- The client on shared stores against the emulator: several processes
-- sharing a file store start cold at once and WeCom sees exactly one
-- gettoken; what a store hands back is data (an empty token is a miss);
-- a lock left by a dead process holds a cold call back by its timeout only.
local wecom = require "wecom"
local core = require "wecom.core"
local child = require "helpers.child"
local emu = require "helpers.emulator"
local redis_server = require "helpers.redis"
local sh = require "helpers.sh"

local CHILD = [[
local wecom = require "wecom"
local core = require "wecom.core"
local dir, base_url, ca_file, start_at = arg[1], arg[2], arg[3], tonumber(arg[4])
while core.now() < start_at do core.sleep(0.005) end
local app = wecom.new { corpid = os.getenv("T_CORPID"), secret = os.getenv("T_SECRET"),
  agentid = tonumber(os.getenv("T_AGENTID")), base_url = base_url, ca_file = ca_file,
  store = wecom.store.file(dir) }
local data, err = app:get("/cgi-bin/agent/get", { agentid = app.agentid })
io.write(data and ("ok " .. data.agentid) or ("fail " .. tostring(err)), "\n")
]]

describe("token manager across processes", function()
    local env, fixture, app_def, dir

    setup(function()
        env = emu.start()
        fixture = emu.fixture()
        app_def = fixture.upstream.apps[1]
        dir = sh.tmpdir("wecom-client-store")
    end)

    teardown(function()
        emu.stop()
        os.execute("rm -rf '" .. dir .. "'")
    end)

    it("fetches a cold token once for six processes sharing a file store", function()
        emu.reset()
        emu.latency(100)  -- the processes' requests overlap
        local start_at = string.format("%.3f", require("wecom.core").now() + 0.5)
        local secrets = { T_CORPID = fixture.upstream.corpid, T_SECRET = app_def.secret,
                                            T_AGENTID = string.format("%d", app_def.agentid) }
        local kids = {}
        for i = 1, 6 do
            kids[i] = child.spawn(CHILD, { dir, env.base_url, env.ca_file, start_at }, secrets)
        end
        for i = 1, 6 do
            assert.equal(string.format("ok %d\n", app_def.agentid), kids[i]:wait())
        end
        emu.latency(0)
        assert.equal(1, emu.stats()["/cgi-bin/gettoken"])
        assert.equal(6, emu.stats()["/cgi-bin/agent/get"])
    end)

    describe("on every store kind", function()
        local srv

        setup(function() srv = redis_server.start{ password = "client-store-pass" } end)
        teardown(function() if srv then srv:destroy() end end)

        local kinds = {
            memory = function() return wecom.store.memory() end,
            file = function() return wecom.store.file(dir .. "/kinds") end,
            redis = function()
                return wecom.store.redis{ port = srv.port, password = "client-store-pass",
                    prefix = core.nonce(8) .. ":" }
            end,
        }

        local function new_app(store, extra)
            local opts = { corpid = fixture.upstream.corpid, secret = app_def.secret, agentid = app_def.agentid,
                base_url = env.base_url, ca_file = env.ca_file, store = store, retries = 0 }
            for k, v in pairs(extra or {}) do opts[k] = v end
            local app = wecom.new(opts)
            store:delete(app.token_key)
            core.token_delete(app.token_key)
            return app
        end

        for _, kind in ipairs { "memory", "file", "redis" } do
            -- issue 10, item 5: 10 of 10 calls failed with 41001 before
            it(kind .. ": an empty token in the store is a miss, replaced by the next fetch", function()
                emu.reset()
                local store = kinds[kind]()
                local app = new_app(store)
                -- what a damaged or hostile writer leaves (the stores refuse
                -- nothing on set: an empty string is a string)
                assert.is_true(store:set(app.token_key, "", core.now() + 3600))
                for _ = 1, 10 do
                    local data, err = app:get("/cgi-bin/agent/get", { agentid = app.agentid })
                    assert.is_nil(err)
                    assert.equal(0, data.errcode)
                end
                assert.equal(1, emu.stats()["/cgi-bin/gettoken"])
                assert.is_true(#store:get(app.token_key) > 0)
            end)

            -- issue 10, item 4: the next cold call waited lease * 2 + 1 s before
            it(kind .. ": a lock left by a dead holder delays a cold call by its timeout at most", function()
                emu.reset()
                local store = kinds[kind]()
                local app = new_app(store, { timeout = 1 })
                -- a holder that will never unlock: another store object
                -- (for file and Redis: as a killed process leaves it)
                assert.is_true(kinds[kind]():lock(app.token_key, 600))
                local started = core.monotonic()
                local data, err = app:get("/cgi-bin/agent/get", { agentid = app.agentid })
                local took = core.monotonic() - started
                assert.is_nil(err)
                assert.equal(0, data.errcode)
                assert.is_true(took < 1 + 2, "the call took " .. took .. " s with timeout 1")
                assert.equal(1, emu.stats()["/cgi-bin/gettoken"])
            end)
        end
    end)
end)
