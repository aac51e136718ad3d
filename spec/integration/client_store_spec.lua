-- The token manager across processes: several processes sharing a file
-- store start cold at once and WeCom sees exactly one gettoken.
local child = require "helpers.child"
local emu = require "helpers.emulator"

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
        dir = os.tmpname()
        os.remove(dir)
        assert(os.execute("mkdir -p '" .. dir .. "'"))
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
end)
