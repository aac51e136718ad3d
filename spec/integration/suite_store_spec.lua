-- wecom.suite on the file and Redis stores, across processes: permanent
-- codes survive a restart (the process that received the installs is gone,
-- a new one uses them), and a fleet of 8 processes on a cold store fetches
-- one suite token and one token per authorized corp.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"
local sh = require "helpers.suite"
local child = require "helpers.child"
local redis_server = require "helpers.redis"
local records = require "wecom.suite.records"
local json = require "wecom.json"
local wecom = require "wecom"

local WORKER = "spec/helpers/suite_worker.lua"
local REDIS_PASSWORD = "suite-store-pass"
local PROCESSES = 8
local CORPS = 24

describe("wecom.suite on shared stores", function()
    local info, fx, srv

    setup(function()
        info = emu.start { corps = CORPS }
        fx = emu.fixture()
        srv = redis_server.start { password = REDIS_PASSWORD }
    end)

    teardown(function()
        emu.stop()
        if srv then srv:destroy() end
    end)

    before_each(function()
        emu.reset()
        local conn = assert(srv:connect())
        assert.equal("OK", conn:command("FLUSHALL"))
        conn:close()
    end)

    after_each(sh.cleanup)

    -- the two stores: args for the worker, and a store object for this process
    local function store_of(kind)
        if kind == "file" then
            local dir = sh.tmpdir()
            return { "file", dir, "" }, wecom.store.file(dir)
        end
        return { "redis", tostring(srv.port), REDIS_PASSWORD },
            wecom.store.redis { port = srv.port, password = REDIS_PASSWORD }
    end

    local function spawn(def, mode, store_args, ...)
        local args = { mode, store_args[1], store_args[2], store_args[3], info.base_url, info.ca_file, def.suite_id }
        for i = 1, select("#", ...) do
            args[#args + 1] = tostring((select(i, ...)))
        end
        return child.spawn_script(WORKER, args, {
            WECOM_SUITE_SECRET = def.suite_secret, WECOM_SUITE_TOKEN = def.callback.token,
            WECOM_SUITE_AES_KEY = def.callback.aes_key,
        })
    end

    local function lines(s)
        local out = {}
        for l in s:gmatch("[^\n]+") do
            out[#out + 1] = l
        end
        return out
    end

    local installable = function(n)
        local ids = {}
        for _, c in ipairs(fx.provider.corps) do
            if c.corpid ~= fx.upstream.corpid then
                ids[#ids + 1] = c.corpid
            end
            if #ids == n then
                break
            end
        end
        return ids
    end

    for _, kind in ipairs { "file", "redis" } do
        it("keeps permanent codes across a restart (" .. kind .. " store)", function()
            local ids = installable(2)
            for _, customized in ipairs { false, true } do
                local def = pv.suite(fx, customized)
                local store_args = store_of(kind)
                -- the process that receives the ticket and the installs ...
                local events = { pv.ok_control("suite_ticket", { suite_id = def.suite_id }) }
                for _, corpid in ipairs(ids) do
                    events[#events + 1] = pv.ok_control("authorize",
                        { suite_id = def.suite_id, corpid = corpid, action = "create" })
                end
                local file = sh.tmpdir() .. "/events.json"
                local f = assert(io.open(file, "wb"))
                f:write(json.encode(events))
                f:close()
                assert.same({ "ok suite_ticket", "ok create_auth", "ok create_auth" },
                    lines(spawn(def, "receive", store_args, file):wait()))
                local exchanged = emu.stats()["/cgi-bin/service/v2/get_permanent_code"]
                assert.equal(2, exchanged)

                -- ... is gone; a new one uses the stored codes
                for i, corpid in ipairs(ids) do
                    local out = spawn(def, "use", store_args, corpid):wait()
                    local agentid, n = out:match("^ok (%d+) (%d+)")
                    assert.equal(events[i + 1].agentid, tonumber(agentid), out)
                    assert.equal("2", n)
                end
                assert.equal(exchanged, emu.stats()["/cgi-bin/service/v2/get_permanent_code"])
                emu.reset()
            end
        end)

        it("8 processes on a cold " .. kind .. " store: one get_suite_token, one get_corp_token per corp",
            function()
            local def = pv.suite(fx, false)
            local store_args, store = store_of(kind)
            local suite = sh.new(info, fx, false, { store = store })
            sh.ready(suite)
            local ids = installable(CORPS - 1)
            for _, corpid in ipairs(ids) do
                sh.install(suite, corpid)
            end
            -- cold: no suite token, no corp token in the store
            assert(records.delete(store, records.token_key(suite._ns)))
            local before = emu.stats()

            local start_file = sh.tmpdir() .. "/start"
            local kids = {}
            for i = 1, PROCESSES do
                kids[i] = spawn(def, "fleet", store_args, start_file, 4)
            end
            for i = 1, PROCESSES do
                assert.equal("ready", kids[i]:line())
            end
            -- the first suite token is slow: every process arrives while it is in flight
            emu.fault { path = "/cgi-bin/service/get_suite_token", count = 1, delay_ms = 300 }
            local f = assert(io.open(start_file, "w"))
            f:close()
            for i = 1, PROCESSES do
                assert.equal(("ok=%d failed=0"):format(#ids), (kids[i]:wait():gsub("%s+$", "")))
            end
            local after = emu.stats()
            local function delta(path)
                return (after[path] or 0) - (before[path] or 0)
            end
            assert.equal(1, delta("/cgi-bin/service/get_suite_token"))
            assert.equal(#ids, delta("/cgi-bin/service/get_corp_token"))
            assert.equal(PROCESSES * #ids, delta("/cgi-bin/agent/get"))
        end)

        it("keeps each authorization as a durable entry, and no index, in the " .. kind .. " store", function()
            local _, store = store_of(kind)
            local suite = sh.new(info, fx, false, { store = store })
            sh.ready(suite)
            local ids = installable(3)
            table.sort(ids)
            local keys = {}
            for i, corpid in ipairs(ids) do
                sh.install(suite, corpid)
                keys[i] = records.corp_key(suite._ns, corpid)
            end
            assert.same(keys, store:list_durable(suite._ns))
            for i = 0, 63 do
                assert.is_nil((store:get(suite._ns .. ":corps:" .. i)))
            end
            if kind == "redis" then
                local conn = assert(srv:connect())
                for _, key in ipairs(keys) do
                    assert.equal(-1, conn:command("TTL", "wecom:" .. key))
                end
                conn:close()
            end
            assert(suite:forget(ids[2]))
            assert.same({ keys[1], keys[3] }, store:list_durable(suite._ns))
        end)
    end

    it("lists 20,000 authorized corps on the memory store, past what the old index held", function()
        local store = wecom.store.memory()
        local suite = sh.new(info, fx, false, { store = store, suite_id = "wwSUITE20K" .. os.time() })
        local n = 20000
        for i = 1, n do
            assert(suite:set_permanent_code(("wwCorp%05d"):format(i), "pc" .. i, i))
        end
        local count, last = 0, ""
        for corp in suite:corps() do
            count = count + 1
            assert.is_true(corp.corpid > last, "listed in corpid order")
            last = corp.corpid
        end
        assert.equal(n, count)
        for _, key in ipairs(store:list_durable(suite._ns)) do
            store:delete(key)
        end
        assert.same({}, store:list_durable(suite._ns))
    end)
end)
