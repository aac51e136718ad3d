-- The shared stores inside a real nginx (2 workers), the app calling the
-- emulator over HTTPS; spec/openresty/redis_site.lua is the nginx side.
-- wecom.store.redis: the cosocket path (core.redis_format bytes over
-- ngx.socket.tcp, replies parsed by core.redis_reader) against a private
-- redis-server with a password, a db other than 0 and a prefix.
-- wecom.store.shdict: the store contract (spec/helpers/store_contract.lua),
-- each case run in a request, and the client on it.

local cjson = require "cjson"
local emulator = require "helpers.emulator"
local nginx = require "helpers.nginx"
local redis = require "helpers.redis"

local core = require "wecom.core"
local common = require "wecom.store.common"
local token = require "wecom.token"
local contract = require "helpers.store_contract"

local DB = 2
local PREFIX = "spec:ngx:"
local GETTOKEN = "/cgi-bin/gettoken"
local CHAIN_LIST = "/cgi-bin/corpgroup/corp/get_chain_list"

-- location = /<name> runs redis_site.<name>() for each name
local function locations(names)
    local text = {}
    for i, name in ipairs(names) do
        text[i] = "        location = /" .. name .. " {\n            content_by_lua_block { require(\"redis_site\")."
            .. name .. "() }\n        }\n"
    end
    return table.concat(text)
end

local CONF = nginx.conf {
    workers = 2,
    env = { "SPEC_BASE_URL", "SPEC_CORPID", "SPEC_SECRET", "SPEC_AGENTID", "SPEC_REDIS_PORT",
            "SPEC_REDIS_PASSWORD", "SPEC_REDIS_DB", "SPEC_REDIS_PREFIX" },
    trusted = "${emu_dir}/trusted.pem",
    dicts = { contract = "1m" },
    http = [[
    init_by_lua_block {
        require("redis_site").init()
    }
]],
    servers = { { text = locations { "chains", "store_reads", "contract", "shdict_call", "storm", "hold_lock",
                                     "pause_probe" } } },
}

describe("wecom.store.redis inside nginx", function()
    local emu, fx, app, srv, base_url, token_key
    local password = "spec-" .. core.nonce(24)

    local function calls(path)
        return emu:calls(path)
    end

    local function start_site(redis_password)
        return nginx.start {
            conf = (CONF:gsub("%${emu_dir}", emu.dir)),
            env = {
                -- a host name: nginx verifies certificates by DNS name
                SPEC_BASE_URL = base_url,
                SPEC_CORPID = fx.upstream.corpid,
                SPEC_SECRET = app.secret,
                SPEC_AGENTID = tostring(app.agentid),
                SPEC_REDIS_PORT = tostring(srv.port),
                SPEC_REDIS_PASSWORD = redis_password,
                SPEC_REDIS_DB = tostring(DB),
                SPEC_REDIS_PREFIX = PREFIX,
            },
        }
    end

    -- the nginx of a describe, started (with redis_password) in its setup
    -- and stopped in its teardown, then after(): the table returned is that
    -- site from the setup on
    local function describe_site(redis_password, after)
        local site = {}
        setup(function()
            local started = start_site(redis_password)
            for k, v in pairs(started) do
                site[k] = v
            end
            setmetatable(site, getmetatable(started))
        end)
        teardown(function()
            if site.stop then
                site:stop()
            end
            if after then
                after()
            end
        end)
        return site
    end

    local function redis_db(db)
        return assert(srv:connect { db = db })
    end

    -- error.log lines at [error] or worse, less those matching an allowed pattern
    local function unexpected_errors(site, allowed)
        return site:error_lines(allowed and function(line) return line:find(allowed) end)
    end

    -- the [warn] lines that report the store's failure
    local function store_warnings(site)
        local lines = {}
        for line in site:log():gmatch("[^\n]+") do
            if line:find("[warn]", 1, true) and line:find("token store failed", 1, true) then
                lines[#lines + 1] = line
            end
        end
        return lines
    end

    local function assert_all_ok(results, n)
        assert.equal(n, #results)
        for i = 1, n do
            assert.equal(200, results[i].status, results[i].body)
            assert.is_true(cjson.decode(results[i].body).count > 0)
        end
    end

    local function assert_no_secrets(site, ...)
        local log = site:log()
        for _, secret in ipairs { app.secret, password, ... } do
            assert.is_nil(log:find(secret, 1, true), "a password or secret is in error.log")
        end
    end

    setup(function()
        emu = emulator.new {}
        fx = emu:fixture()
        app = emulator.fixture_app(fx, true)
        base_url = "https://localhost:" .. emu.port
        token_key = PREFIX .. token.app_key(fx.upstream.corpid, app.agentid, app.secret, base_url)
        srv = redis.start { password = password }
    end)

    teardown(function()
        if srv then
            srv:destroy()
        end
        if emu then
            emu:stop()
        end
    end)

    before_each(function()
        emu:reset()
        if srv.pid then
            local conn = redis_db(0)
            assert.equal("OK", conn:command("FLUSHALL"))
            conn:close()
        end
    end)

    describe("with Redis up", function()
        local site = describe_site(password)

        it("serves 200 concurrent requests with a cold token: one gettoken, the token in Redis", function()
            local conn = redis_db(DB)
            local function connections()
                return tonumber(conn:command("INFO", "stats"):match("total_connections_received:(%d+)"))
            end
            local connections_before = connections()

            assert_all_ok(site:parallel_get("/chains", 200), 200)
            assert.equal(1, calls(GETTOKEN))
            assert.equal(200, calls(CHAIN_LIST))

            -- A blocking connection is one per worker (2 here); cosockets
            -- open as many as there are requests waiting on Redis at once.
            local opened = connections() - connections_before
            assert.is_true(opened > 2, "nginx opened " .. opened .. " Redis connections")

            -- under the prefix, in db DB, with Redis' own expiry
            assert.same({ token_key }, conn:command("KEYS", "*"))
            local value, expires_at = common.split_record(conn:command("GET", token_key))
            assert.is_true(expires_at > core.now() + 3600)
            local pttl = conn:command("PTTL", token_key)
            assert.is_true(pttl > 3600 * 1000 and pttl <= 7200 * 1000, "PTTL " .. pttl)
            -- and it is the token the app used: the emulator accepts it
            -- (compared by use, so the value is never printed)
            local _, data = emu:api("GET", CHAIN_LIST, value)
            assert.equal(0, data.errcode)
            conn:close()

            local db0 = redis_db(0)
            assert.equal(0, db0:command("DBSIZE"))
            db0:close()
            assert.same({}, unexpected_errors(site))
            assert.same({}, store_warnings(site))
            assert_no_secrets(site)
        end)

        it("yields to nginx while Redis holds the reply (the cosocket path, not the blocking one)", function()
            local conn = redis_db(DB)
            local expires_at = core.now() + 60
            assert.equal("OK", conn:command("SET", PREFIX .. "pause-probe",
                common.record(expires_at, "probe-value"), "EX", 60))
            conn:close()

            local status, body = site:request("GET", "/pause_probe?key=pause-probe&ms=300")
            assert.equal(200, status, body)
            local probe = cjson.decode(body)
            assert.equal("probe-value", probe.value)
            assert.is_nil(probe.err)
            -- the read really waited for the pause to end ...
            assert.is_true(probe.waited >= 0.25, "the read took " .. probe.waited .. " s")
            -- ... and the worker ran another light thread meanwhile: a
            -- blocking hiredis call would leave it at 0
            assert.is_true(probe.ticks_while_reading > 0,
                "no tick in " .. probe.waited .. " s of waiting on Redis")
            assert.same({}, unexpected_errors(site))
        end)
    end)

    describe("wecom.store.shdict", function()
        local site = describe_site(password)

        for _, name in ipairs(contract.names()) do
            it("keeps the store contract: " .. name, function()
                local status, body = site:request("GET", "/contract?case=" .. emulator.urlencode(name))
                assert.equal(200, status, body)
                local res = cjson.decode(body)
                assert.is_true(res.ok, res.err)
            end)
        end

        -- issue 10, item 6: WeCom hands out the same token string again while it
        -- is valid; a rejection that arrives after another caller's refetch must
        -- not drop that fresh copy
        it("makes one refetch for 50 light threads whose 40014 answers arrive one by one", function()
            assert.equal(200, (site:request("GET", "/shdict_call")))
            assert.equal(1, calls("/cgi-bin/gettoken"))
            emu:fault { path = "/cgi-bin/agent/get", errcode = 40014, count = 50 }
            local status, body = site:request("GET", "/storm?n=50&errcode=40014")
            assert.equal(200, status, body)
            local res = cjson.decode(body)
            assert.same({}, res.failed)
            assert.equal(50, res.ok)
            assert.equal(2, calls("/cgi-bin/gettoken"))
            assert.equal(1 + 2 * 50, calls("/cgi-bin/agent/get"))
        end)

        it("keeps gettoken calls bounded for 200 concurrent requests rejected with 40014", function()
            assert.equal(200, (site:request("GET", "/shdict_call")))
            assert.equal(1, calls("/cgi-bin/gettoken"))
            emu:fault { path = "/cgi-bin/agent/get", errcode = 40014, count = 200 }
            site:parallel_get("/shdict_call", 200)
            -- the injected faults reject every token, the fresh ones too, so
            -- each fetch some request started with is refused once and
            -- refetched once: a handful of generations, however the 200
            -- requests interleave (the old compare-by-string made ~100; the
            -- staggered storm above is the exact check)
            assert.is_true(calls("/cgi-bin/gettoken") <= 16, calls("/cgi-bin/gettoken") .. " gettoken calls")
        end)

        -- issue 10, item 4
        it("serves a cold call past a lock a dead holder left within the call's timeout", function()
            local status, body = site:request("GET", "/hold_lock")
            assert.equal(200, status, body)
            assert.is_true(cjson.decode(body).locked)
            local res
            status, body = site:request("GET", "/shdict_call")
            assert.equal(200, status, body)
            res = cjson.decode(body)
            assert.is_true(res.took < 1 + 2, "the call took " .. res.took .. " s with timeout 1")
            assert.equal(1, calls("/cgi-bin/gettoken"))
            assert.same({}, site:error_lines())
        end)
    end)

    describe("with Redis stopped while nginx runs", function()
        local site = describe_site(password, function()
            if not srv.pid then
                srv:launch()
            end
        end)

        it("answers from the in-process cache, warns without the password, and uses Redis again once back", function()
            assert.equal(200, (site:request("GET", "/chains")))
            local conn = redis_db(DB)
            assert.equal(1, conn:command("EXISTS", token_key))
            conn:close()
            assert.equal(1, calls(GETTOKEN))

            srv:stop()
            assert_all_ok(site:parallel_get("/chains", 40), 40)
            -- one fetch per worker at most, then each worker's memory cache
            local fetched = calls(GETTOKEN) - 1
            assert.is_true(fetched >= 1 and fetched <= 2, fetched .. " gettokens while Redis was down")

            local warnings = store_warnings(site)
            assert.is_true(#warnings >= 1 and #warnings <= 2, #warnings .. " store warnings")
            for _, line in ipairs(warnings) do
                assert.truthy(line:find("redis 127.0.0.1:" .. srv.port, 1, true), line)
            end
            assert_no_secrets(site)

            -- Regression: the cosocket path connected on every call while
            -- Redis was away (nginx logging an [error] line each time); like
            -- the blocking path it now waits reconnect_delay (0.2 s) between
            -- tries, so 10 reads in a row cost at most one connect.
            local status, body = site:request("GET", "/store_reads?key=absent&n=10")
            assert.equal(200, status, body)
            local errs = cjson.decode(body).errors
            assert.equal(10, #errs)
            for _, err in ipairs(errs) do
                assert.truthy(err:find("redis 127.0.0.1:" .. srv.port, 1, true), err)
            end
            local refused = 0
            for _, line in ipairs(site:error_lines()) do
                if line:find("GET /store_reads?", 1, true) then
                    refused = refused + 1
                end
            end
            assert.is_true(refused <= 1, refused .. " connects for 10 reads")

            -- nginx itself logs the refused connects (lua_socket_log_errors); nothing else
            assert.same({}, unexpected_errors(site,
                "connect%(%) failed %(111: Connection refused%), client: 127%.0%.0%.1, .*\"GET /[%w_]+[? ]"))

            assert.is_true(srv:launch(), "redis-server did not come back on port " .. srv.port)
            -- past reconnect_delay: the workers try Redis again
            os.execute("sleep 0.3")
            local before = calls(GETTOKEN)
            assert.equal(200, (site:request("GET", "/chains")))
            -- the restarted Redis is empty: the token is fetched once and stored there again
            assert.equal(before + 1, calls(GETTOKEN))
            conn = redis_db(DB)
            assert.equal(1, conn:command("EXISTS", token_key))
            conn:close()
            assert.equal(200, (site:request("GET", "/chains")))
            assert.equal(before + 1, calls(GETTOKEN))
        end)
    end)

    describe("with a wrong Redis password", function()
        local wrong = "wrong-" .. core.nonce(24)
        local site = describe_site(wrong)

        it("serves requests, warns of the failed AUTH without either password", function()
            assert_all_ok(site:parallel_get("/chains", 40), 40)
            local fetched = calls(GETTOKEN)
            assert.is_true(fetched >= 1 and fetched <= 2, fetched .. " gettokens")

            local warnings = store_warnings(site)
            assert.is_true(#warnings >= 1 and #warnings <= 2, #warnings .. " store warnings")
            for _, line in ipairs(warnings) do
                assert.truthy(line:find("redis 127.0.0.1:" .. srv.port .. ": AUTH failed", 1, true), line)
                assert.truthy(line:find("WRONGPASS", 1, true), line)
            end
            assert_no_secrets(site, wrong)
            assert.same({}, unexpected_errors(site))

            local conn = redis_db(DB)
            assert.equal(0, conn:command("DBSIZE"))
            conn:close()
        end)
    end)
end)
