-- The SDK inside a real nginx worker (spec/openresty/ngx_cases.lua runs the
-- cases there): the cosocket transport against a scripted HTTPS peer and
-- the emulator, the shared-dict store, wecom.parallel over ngx.thread, and
-- calls from phases without cosockets.

local cjson = require "cjson"
local emulator = require "helpers.emulator"
local nginx = require "helpers.nginx"

-- the machine has an IPv6 loopback address (::1)
local IPV6 = false
for line in (nginx.read_file("/proc/net/if_inet6") or ""):gmatch("[^\n]+") do
    IPV6 = IPV6 or line:match("^0+1%s") ~= nil
end

local CONF = nginx.conf {
    env = { "SPEC_BASE_URL", "SPEC_CORPID", "SPEC_SECRET", "SPEC_AGENTID", "SPEC_PEER" },
    dicts = { wecom_spec = "1m", results = "1m" },
    trusted = "${emu_dir}/trusted.pem",
    http = [[
    init_worker_by_lua_block {
        require("ngx_cases").init_worker()
    }
]],
    servers = {
        { text = [[
        location /run/ {
            content_by_lua_block {
                require("ngx_cases").run()
            }
            log_by_lua_block {
                require("ngx_cases").log_phase()
            }
        }
]] },
        -- the scripted peer: HTTPS with the emulator's certificate for
        -- localhost (and 127.0.0.1), on the IPv6 loopback too where there is one
        { listen = "127.0.0.1:${port2}",
          ssl = { cert = "${emu_dir}/server.pem", key = "${emu_dir}/server.key" },
          text = (IPV6 and "        listen [::1]:${port2} ssl;\n" or "") .. [[
        keepalive_timeout 10s;
        location / {
            content_by_lua_block {
                require("ngx_cases").peer()
            }
        }
]] },
    },
}

describe("inside nginx", function()
    local emu, fx, site, app

    local function run(name)
        local status, body = site:request("GET", "/run/" .. name)
        assert.equal(200, status, body)
        return cjson.decode(body)
    end

    local function calls(path)
        return emu:calls(path)
    end

    setup(function()
        emu = emulator.new {}
        fx = emu:fixture()
        app = emulator.fixture_app(fx, true)
        local conf = CONF:gsub("%${emu_dir}", emu.dir)
        site = nginx.start {
            conf = conf,
            env = {
                SPEC_BASE_URL = "https://localhost:" .. emu.port,
                SPEC_CORPID = fx.upstream.corpid,
                SPEC_SECRET = app.secret,
                SPEC_AGENTID = tostring(app.agentid),
                SPEC_PEER = "https://localhost:${port2}",
            },
        }
    end)

    teardown(function()
        if site then
            site:stop()
        end
        if emu then
            emu:stop()
        end
    end)

    describe("the transport", function()
        it("is the cosocket one", function()
            assert.equal("ngx", run("transport_name").name)
        end)

        it("reads Content-Length bodies and lower-cases header names", function()
            local res = run("content_length")
            assert.equal(200, res.status)
            assert.equal("hello world", res.body)
            assert.equal("11", res.headers["content-length"])
            assert.equal("a, b", res.headers["x-multi"])
        end)

        it("reads chunked bodies", function()
            local res = run("chunked")
            assert.equal(200, res.status)
            assert.equal("chunked", res.headers["transfer-encoding"])
            local want = {}
            for i = 1, 5 do
                want[i] = string.rep(tostring(i), 1000)
            end
            assert.equal(table.concat(want), res.body)
        end)

        it("reads bodies that end when the server closes", function()
            local res = run("until_close")
            assert.equal(200, res.status)
            assert.equal("until the end", res.body)
        end)

        it("sends the body with Content-Length, the Host and the query", function()
            local res = run("echo_post")
            assert.equal(200, res.status)
            local echo = cjson.decode(res.body)
            assert.equal("POST", echo.method)
            assert.equal('{"x":1}', echo.body)
            assert.equal("7", echo.content_length)
            assert.equal("application/json", echo.content_type)
            assert.equal("localhost:" .. site.port2, echo.host)
            assert.equal("a=1&b=%2B", echo.args)
        end)

        it("keeps connections alive in the worker's pool", function()
            local conns = run("keepalive")
            assert.equal(conns[1], conns[2])
            assert.equal(conns[1], conns[3])
        end)

        it("retries on a fresh connection when a pooled one was closed", function()
            local res = run("stale")
            assert.equal("stale", res.first.body)
            assert.equal(200, res.second.status)
            assert.equal("hello world", res.second.body)
        end)

        it("times out with kind 'timeout' and no query string in the message", function()
            local res = run("timeout")
            assert.is_false(res.res)
            assert.equal("timeout", res.err.kind)
            assert.equal(28, res.err.curl_code)
            assert.is_nil(res.err.message:find("SECRET", 1, true))
            assert.is_true(res.elapsed >= 0.15 and res.elapsed < 0.9, "elapsed " .. res.elapsed)
        end)

        it("reports a refused connection as a transport error (curl code 7)", function()
            local err = run("refused").err
            assert.equal("transport", err.kind)
            assert.equal(7, err.curl_code)
            assert.truthy(err.message:find("localhost:1", 1, true))
            assert.is_nil(err.message:find("SECRET", 1, true))
        end)

        -- issue 13: nginx checks a certificate against host names only, so an
        -- IP address in the URL fails even where the certificate names it;
        -- the error says so, and what to use instead
        it("says an IP address cannot pass nginx's certificate check, and to use a host name", function()
            local err = run("ip_host").err
            assert.equal("tls", err.kind)
            assert.equal(60, err.curl_code)
            assert.truthy(err.message:find("TLS handshake with 127.0.0.1:" .. site.port2 .. " failed", 1, true),
                err.message)
            assert.truthy(err.message:find("127.0.0.1 is an IP address", 1, true), err.message)
            assert.truthy(err.message:find("host name", 1, true), err.message)
            assert.truthy(err.message:find("https://localhost:" .. site.port2, 1, true), err.message)
            assert.is_nil(err.message:find("SECRET", 1, true))
        end)

        it("says the same for an IPv6 address", function()
            if not IPV6 then
                pending("no IPv6 loopback on this machine")
                return
            end
            local err = run("ip_host?ip=::1").err
            assert.equal("tls", err.kind, err.message)
            assert.truthy(err.message:find("TLS handshake with [::1]:" .. site.port2 .. " failed", 1, true),
                err.message)
            assert.truthy(err.message:find("::1 is an IP address", 1, true), err.message)
            assert.truthy(err.message:find("https://localhost:" .. site.port2, 1, true), err.message)
        end)

        it("gives a client whose base_url names the emulator by IP the same plain error", function()
            local res = run("ip_base_url")
            assert.is_false(res.ok)
            assert.equal("tls", res.err.kind, res.err.text)
            assert.truthy(res.err.errmsg:find("127.0.0.1 is an IP address", 1, true), res.err.errmsg)
            assert.truthy(res.err.errmsg:find("https://localhost:" .. emu.port, 1, true), res.err.errmsg)
        end)

        it("says a resolver directive is missing", function()
            local err = run("no_resolver").err
            assert.equal("transport", err.kind)
            assert.equal(6, err.curl_code)
            assert.truthy(err.message:find("resolver", 1, true))
            assert.is_nil(err.message:find("SECRET", 1, true))
        end)

        it("sends the host name as SNI", function()
            local res = run("sni")
            assert.equal(200, res.status)
            assert.equal("localhost", res.body)
        end)

        it("reports a connection dropped mid-body as a transport error, without the query", function()
            local err = run("cut").err
            assert.equal("transport", err.kind)
            assert.equal(56, err.curl_code)
            assert.truthy(err.message:find("localhost:", 1, true))
            assert.is_nil(err.message:find("SECRET", 1, true))
            assert.is_nil(err.message:find("/cut", 1, true))
        end)

        it("reports a connection closed without a response as a transport error (curl code 52)", function()
            local err = run("nothing").err
            assert.equal("transport", err.kind)
            assert.equal(52, err.curl_code)
            assert.is_nil(err.message:find("SECRET", 1, true))
        end)

        it("rejects a reply that is not HTTP", function()
            local err = run("garbage").err
            assert.equal("transport", err.kind)
            assert.equal(8, err.curl_code)
        end)

        it("refuses a proxy and ignores ca_file with a warning", function()
            local res = run("options")
            assert.is_false(res.proxy_ok)
            assert.truthy(res.proxy_err:find("'proxy' is not supported inside nginx", 1, true))
            assert.is_true(res.ca_ok)
            assert.truthy(site:log():find("ca_file' is ignored inside nginx", 1, true))
        end)
    end)

    describe("the client", function()
        it("calls the emulator over HTTPS with a token from the shared dict", function()
            emu:reset()
            local res = run("client")
            assert.is_nil(res.err)
            assert.is_true(res.chains > 0)
            assert.is_true(res.token_len > 0)
            assert.is_true(res.expires_in > 7000)
            -- the token came from the store the second time
            assert.equal(1, calls("/cgi-bin/gettoken"))
        end)

        it("keeps a still-valid token when an early refresh fails", function()
            emu:fault { path = "/cgi-bin/gettoken", count = 1, errcode = 40013 }
            local before = calls("/cgi-bin/gettoken")
            local res = run("keep_on_failure")
            assert.equal("OLD-BUT-VALID", res.token)
            -- the refresh was tried (and failed)
            assert.equal(before + 1, calls("/cgi-bin/gettoken"))
        end)

        it("refreshes a token close to expiry ahead of time and stores the new one", function()
            local before = calls("/cgi-bin/gettoken")
            local res = run("refresh_ahead")
            assert.is_string(res.token)
            assert.are_not.equal("NEAR-EXPIRY", res.token)
            assert.equal(res.token, res.stored)
            assert.is_true(res.expires_in > 7000)
            assert.equal(before + 1, calls("/cgi-bin/gettoken"))
        end)

        it("maps API errors", function()
            local res = run("api_error")
            assert.is_nil(res.data)
            assert.equal("api", res.err.kind)
            assert.is_number(res.err.errcode)
            assert.is_nil(res.err.text:find(app.secret, 1, true))
        end)
    end)

    describe("wecom.store.shdict", function()
        -- (the store contract: spec/openresty/redis_store_spec.lua)
        it("raises a clear error for a dict nginx does not declare, and names the dict in tostring", function()
            local res = run("store_missing_dict")
            assert.is_false(res.ok)
            assert.truthy(res.err:find("lua_shared_dict 'no_such_dict' is not declared", 1, true))
            assert.truthy(res.err:find("lua_shared_dict no_such_dict 1m;", 1, true))
            assert.is_false(res.ok2)
            assert.truthy(res.err2:find("name must be", 1, true))
            assert.equal("wecom.store.shdict (wecom_spec)", res.tostring)
        end)

        it("wakes a waiter of the same worker when the lock is released", function()
            local res = run("store_wait")
            assert.is_true(res.waited < 0.5, "waited " .. res.waited)
            assert.is_true(res.timed_out_after >= 0.09, "timed out after " .. res.timed_out_after)
        end)
    end)

    describe("wecom.parallel over ngx.thread", function()
        it("returns results in the plain scheduler's shape", function()
            local res = run("parallel_shape")
            local r = res.results
            assert.equal(5, res.count)
            assert.same({ ok = true, value = 1, n = 3, v1 = 1, v3 = 3 }, r[1])
            assert.same({ ok = false, err = "failed" }, r[2])
            assert.same({ ok = false, err = { code = 7 } }, r[3])
            assert.same({ ok = true, n = 0 }, r[4])
            assert.same({ ok = true, value = "x", n = 1, v1 = "x" }, r[5])
            assert.equal(0, res.empty)
        end)

        it("bounds concurrency, keeps order, sleeps without blocking and nests", function()
            local res = run("parallel_concurrency")
            assert.equal(4, res.max_running)
            assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, res.values)
            -- 12 tasks of 50 ms, 4 at a time: 3 rounds
            assert.is_true(res.elapsed >= 0.14 and res.elapsed < 0.5, "elapsed " .. res.elapsed)
            assert.equal("ab", res.nested)
        end)

        it("makes one gettoken for 20 light threads with a cold token", function()
            emu:reset()
            run("flush")
            local res = run("parallel_tokens")
            assert.equal(20, res.ok)
            assert.equal(1, calls("/cgi-bin/gettoken"))
            assert.equal(20, calls("/cgi-bin/corpgroup/corp/get_chain_list"))
        end)
    end)

    describe("phases without cosockets", function()
        it("fail with an error naming the phase; a timer is the way out", function()
            run("log_phase")
            local results
            for _ = 1, 50 do
                results = run("results")
                if results.log and results.timer then
                    break
                end
                os.execute("sleep 0.05")
            end
            assert.is_false(results.init_worker.ok)
            assert.truthy(results.init_worker.err:find("not possible in the init_worker phase", 1, true))
            assert.truthy(results.init_worker.err:find("ngx.timer.at", 1, true))
            assert.is_false(results.log.ok)
            assert.truthy(results.log.err:find("not possible in the log phase", 1, true))
            assert.is_false(results.log.sleep_ok)
            assert.truthy(results.log.sleep_err:find("log_by_lua", 1, true))
            assert.is_true(results.timer.ok, results.timer.err)
            assert.is_true(results.timer.chains > 0)
        end)
    end)

    describe("wecom.ngx.callback_handler", function()
        it("checks its options", function()
            local res = run("handler_options")
            assert.truthy(res.nothing:find("wecom.ngx.callback_handler: opts must be a table", 1, true))
            assert.truthy(res.no_callback:find("opts.callback is required (a wecom.callback object", 1, true))
            assert.truthy(res.bad_router:find("opts.router must be a wecom.callback router", 1, true))
            assert.truthy(res.unknown:find("unknown option 'routr'", 1, true))
            assert.equal("ok", res.good)
        end)
    end)

    it("leaves no unexpected error lines in error.log", function()
        -- lua-nginx-module logs the failures the transport cases cause on
        -- purpose (lua_socket_log_errors): a certificate that does not match
        -- (ip_host), the read timeout (timeout), the refused connection (refused)
        assert.same({}, site:error_lines(function(line)
            return line:find("lua ssl certificate does not match host", 1, true)
                or line:find("lua tcp socket read timed out", 1, true) and line:find("/run/timeout", 1, true)
                or line:find("Connection refused", 1, true) and line:find("/run/refused", 1, true)
        end))
    end)
end)
