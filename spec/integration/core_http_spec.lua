-- wecom.core.http_session against the emulator: HTTPS with verification
-- against the emulator's own CA, keep-alive, concurrency via submit/poll,
-- and each of the emulator's fault kinds.
local core = require "wecom.core"
local cjson = require "cjson"
local emu = require "helpers.emulator"

describe("core.http_session against the emulator", function()
    local info, fx, system, token, session

    local AGENT_GET = "/cgi-bin/agent/get"

    local function url(path, query)
        return info.base_url .. path .. emu.query_string(query)
    end

    -- a cheap authenticated API call
    local function agent_get_url()
        return url(AGENT_GET, { access_token = token, agentid = system.agentid })
    end

    setup(function()
        info = emu.start()
        fx = emu.fixture()
        system = emu.fixture_app(fx, true)
    end)

    teardown(function()
        emu.stop()
    end)

    before_each(function()
        emu.reset()   -- also revokes tokens
        token = emu.app_token()
        session = core.http_session{ ca_file = info.ca_file, timeout = 10 }
    end)

    after_each(function()
        session:close()
    end)

    it("GETs JSON over verified HTTPS", function()
        local res, err = session:request{ url = url("/cgi-bin/gettoken",
            { corpid = fx.upstream.corpid, corpsecret = system.secret }) }
        assert.is_nil(err)
        assert.equal(200, res.status)
        assert.matches("^application/json", res.headers["content-type"])
        local data = cjson.decode(res.body)
        assert.equal(0, data.errcode)
        assert.equal(token, data.access_token)
    end)

    it("POSTs JSON and the emulator reads the body", function()
        local res = assert(session:request{
            method = "POST",
            url = url("/cgi-bin/corpgroup/corp/list_app_share_info", { access_token = token }),
            headers = { ["Content-Type"] = "application/json" },
            body = cjson.encode{ agentid = system.agentid, business_type = 1, limit = 2 },
        })
        assert.equal(200, res.status)
        local data = cjson.decode(res.body)
        assert.equal(0, data.errcode)
        assert.is_true(#data.corp_list >= 1 and #data.corp_list <= 2)
        assert.is_string(data.corp_list[1].corpid)

        -- a body the emulator cannot parse is answered as such, proving it was sent
        local bad = assert(session:request{
            method = "POST",
            url = url("/cgi-bin/corpgroup/corp/list_app_share_info", { access_token = token }),
            headers = { ["Content-Type"] = "application/json" },
            body = "{not json",
        })
        assert.are_not.equal(0, cjson.decode(bad.body).errcode)
    end)

    it("returns response header names in lower case", function()
        local res = assert(session:request{ url = agent_get_url() })
        local any = false
        for name in pairs(res.headers) do
            assert.equal(name:lower(), name)
            any = true
        end
        assert.is_true(any)
        assert.is_string(res.headers["content-length"] or res.headers["transfer-encoding"])
    end)

    it("keeps one connection alive across sequential requests", function()
        local opened = 0
        for _ = 1, 10 do
            local res = assert(session:request{ url = agent_get_url() })
            assert.equal(0, cjson.decode(res.body).errcode)
            opened = opened + res.new_connections
        end
        assert.equal(1, opened)
        assert.equal(10, emu.stats()[AGENT_GET])
    end)

    it("runs 50 requests concurrently through submit/poll", function()
        emu.latency(200)
        local ids, ok, opened = {}, 0, 0
        local started = core.monotonic()
        for _ = 1, 50 do
            ids[session:submit{ url = agent_get_url() }] = true
        end
        assert.equal(50, session:pending())
        while session:pending() > 0 do
            for _, r in ipairs(session:poll(5)) do
                assert.is_true(ids[r.id])
                ids[r.id] = nil
                assert.is_nil(r.err)
                assert.equal(0, cjson.decode(r.res.body).errcode)
                ok = ok + 1
                opened = opened + r.res.new_connections
            end
        end
        local elapsed = core.monotonic() - started
        emu.latency(0)
        assert.equal(50, ok)
        assert.equal(50, emu.stats()[AGENT_GET])
        -- one connection per request in flight; serially this would take >= 10 s
        assert.equal(50, opened)
        assert.is_true(elapsed < 5, "50 x 200 ms took " .. elapsed .. " s")
    end)

    it("reuses the pool of connections for the next concurrent batch", function()
        local function batch(n)
            local opened = 0
            for _ = 1, n do session:submit{ url = agent_get_url() } end
            while session:pending() > 0 do
                for _, r in ipairs(session:poll(5)) do
                    assert.is_nil(r.err)
                    opened = opened + r.res.new_connections
                end
            end
            return opened
        end
        emu.latency(50)
        local first = batch(20)
        local second = batch(20)
        emu.latency(0)
        assert.equal(20, first)
        assert.equal(0, second)
    end)

    it("opens at most max_connections connections to the host", function()
        local narrow = core.http_session{ ca_file = info.ca_file, timeout = 10, max_connections = 4 }
        emu.latency(50)
        local opened, done = 0, 0
        for _ = 1, 20 do narrow:submit{ url = agent_get_url() } end
        while narrow:pending() > 0 do
            for _, r in ipairs(narrow:poll(5)) do
                assert.is_nil(r.err)
                opened = opened + r.res.new_connections
                done = done + 1
            end
        end
        emu.latency(0)
        narrow:close()
        assert.equal(20, done)
        assert.equal(4, opened)
    end)

    it("refuses the emulator's certificate without its CA (system bundle only)", function()
        local plain = core.http_session{ timeout = 10 }
        local res, message, kind, curl_code = plain:request{ url = agent_get_url() }
        plain:close()
        assert.is_nil(res)
        assert.equal("tls", kind)
        assert.equal(60, curl_code)   -- CURLE_PEER_FAILED_VERIFICATION
        assert.is_nil(message:find(token, 1, true))
        assert.equal(nil, emu.stats()[AGENT_GET])
    end)

    it("refuses a CA that did not sign the emulator's certificate", function()
        local other = core.http_session{ timeout = 10, ca_file = "/etc/ssl/certs/ca-certificates.crt" }
        local _, _, kind = other:request{ url = agent_get_url() }
        other:close()
        assert.equal("tls", kind)
    end)

    describe("faults", function()
        it("http_status: the status and the HTML page come back as a response", function()
            emu.fault{ path = AGENT_GET, http_status = 502 }
            local res = assert(session:request{ url = agent_get_url() })
            assert.equal(502, res.status)
            assert.matches("^text/html", res.headers["content-type"])
            assert.matches("502", res.body, 1, true)
            assert.equal(200, assert(session:request{ url = agent_get_url() }).status)
        end)

        it("delay_ms: a slow answer times out, without the token in the message", function()
            emu.fault{ path = AGENT_GET, delay_ms = 2000 }
            local res, message, kind, curl_code = session:request{ url = agent_get_url(), timeout = 0.3 }
            assert.is_nil(res)
            assert.equal("timeout", kind)
            assert.equal(28, curl_code)
            assert.is_nil(message:find(token, 1, true))
            assert.is_nil(message:find("access_token", 1, true))
        end)

        it("close: a dropped connection is a transport error, and the session recovers", function()
            emu.fault{ path = AGENT_GET, close = true }
            local res, message, kind = session:request{ url = agent_get_url() }
            assert.is_nil(res)
            assert.equal("transport", kind)
            assert.is_nil(message:find(token, 1, true))
            local again = assert(session:request{ url = agent_get_url() })
            assert.equal(0, cjson.decode(again.body).errcode)
        end)

        it("body: the injected body arrives verbatim", function()
            emu.fault{ path = AGENT_GET, body = '{"errcode":0,"chains":[' }
            local res = assert(session:request{ url = agent_get_url() })
            assert.equal(200, res.status)
            assert.equal('{"errcode":0,"chains":[', res.body)
        end)

        it("errcode: a WeCom error is an ordinary 200 response", function()
            emu.fault{ path = AGENT_GET, errcode = -1 }
            local res = assert(session:request{ url = agent_get_url() })
            assert.equal(200, res.status)
            assert.equal(-1, cjson.decode(res.body).errcode)
        end)

        it("a response over max_body is refused", function()
            emu.fault{ path = AGENT_GET, body = string.rep("x", 4096) }
            local res, message, kind, curl_code = session:request{ url = agent_get_url(), max_body = 1024 }
            assert.is_nil(res)
            assert.equal("transport", kind)
            assert.equal(63, curl_code)   -- CURLE_FILESIZE_EXCEEDED, as for every size limit
            assert.equal("response body exceeds the size limit (max_body 1024 bytes)", message)
        end)
    end)
end)
