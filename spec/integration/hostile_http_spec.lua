-- The libcurl transport against a hostile HTTPS server (spec/helpers/
-- hostile.lua, a real nginx over TLS): endless lines stop at a byte cap,
-- drips stop at the request's deadline.  The same servers face the cosocket
-- transport in spec/openresty/hostile_spec.lua.

local hostile = require "helpers.hostile"
local core = require "wecom.core"

local peak_rss = hostile.peak_rss

local LIMIT = 128 * 1024 * 1024   -- what an endless answer sends at most

describe("against a hostile server", function()
    local h

    setup(function()
        h = hostile.start()
    end)

    teardown(function()
        if h then
            h:stop()
        end
    end)

    describe("the curl transport", function()
        local transport

        before_each(function()
            transport = require("wecom.transport.curl").new { ca_file = h.ca_file, timeout = 2 }
        end)

        after_each(function()
            transport:close()
        end)

        it("answers a well-formed request (the server works)", function()
            local res, err = transport:request { method = "GET", url = h.url("/ok") }
            assert.is_nil(err)
            assert.equal(200, res.status)
            assert.equal("ok", res.body)
        end)

        for _, name in ipairs { "endless_header", "endless_status", "many_headers", "endless_trailer" } do
            it("stops reading " .. name .. " at a byte cap, with a transport error", function()
                local before = peak_rss()
                local t0 = core.monotonic()
                local res, err = transport:request { method = "GET", url = h.url("/" .. name .. "?limit=" .. LIMIT) }
                local elapsed = core.monotonic() - t0
                assert.is_nil(res)
                assert.equal("transport", err.kind)
                assert.is_true(elapsed < 2, "took " .. elapsed .. " s")
                -- the client hung up long before the server was done
                local sent = h:sent(name)
                assert.is_true(sent > 0 and sent < LIMIT / 4, "the server sent " .. sent .. " bytes")
                assert.is_true(peak_rss() - before < 32 * 1024 * 1024, "peak RSS grew by " .. (peak_rss() - before))
            end)
        end

        it("stops an endless chunk-size line", function()
            local res, err = transport:request { method = "GET", url = h.url("/endless_chunk?limit=" .. LIMIT) }
            assert.is_nil(res)
            assert.equal("transport", err.kind)
            local sent = h:sent("endless_chunk")
            assert.is_true(sent > 0 and sent < LIMIT / 4, "the server sent " .. sent .. " bytes")
        end)

        for _, name in ipairs { "drip_header", "drip_body", "drip_chunked", "drip_close" } do
            it("ends a " .. name .. " within timeout, with kind 'timeout'", function()
                local t0 = core.monotonic()
                -- one byte every 0.5 s for 20 s: each byte is well within any
                -- idle timeout, only a deadline ends it in time
                local res, err = transport:request { method = "GET", url = h.url("/" .. name .. "?n=40&every=0.5") }
                local elapsed = core.monotonic() - t0
                assert.is_nil(res)
                assert.equal("timeout", err.kind)
                assert.equal(28, err.curl_code)
                assert.is_true(elapsed < 2 + 1, "took " .. elapsed .. " s")
            end)
        end

        it("keeps the per-request timeout a deadline too", function()
            local t0 = core.monotonic()
            local res, err = transport:request { method = "GET", url = h.url("/drip_body?n=40&every=0.5"), timeout = 1 }
            local elapsed = core.monotonic() - t0
            assert.is_nil(res)
            assert.equal("timeout", err.kind)
            assert.is_true(elapsed < 1 + 1, "took " .. elapsed .. " s")
        end)

        it("ends a TLS handshake nobody answers within timeout", function()
            -- a listening socket that never accepts: the kernel completes
            -- the TCP handshake, then nothing comes back
            local silent = assert(require("socket").bind("127.0.0.1", 0))
            local _, port = silent:getsockname()
            local t0 = core.monotonic()
            local res, err = transport:request { method = "GET", url = "https://localhost:" .. port .. "/x",
                timeout = 1 }
            local elapsed = core.monotonic() - t0
            silent:close()
            assert.is_nil(res)
            assert.equal("timeout", err.kind, err.message)
            assert.is_true(elapsed < 1 + 1, "took " .. elapsed .. " s")
        end)

        it("refuses a body over max_body with a transport error", function()
            local small = require("wecom.transport.curl").new { ca_file = h.ca_file, timeout = 2, max_body = 10 }
            local res, err = small:request { method = "GET", url = h.url("/drip_body?n=40&every=0.01") }
            small:close()
            assert.is_nil(res)
            assert.equal("transport", err.kind)
            assert.equal(63, err.curl_code)
        end)
    end)

    describe("a client at that base_url (curl)", function()
        it("gets a bounded transport or timeout error", function()
            local wecom = require "wecom"
            -- the hostile server answers any path the same way; base_url's path
            -- prefix picks the answer
            local function client(answer)
                return wecom.new { corpid = "wwHOSTILE", secret = "s", ca_file = h.ca_file, timeout = 2, retries = 0,
                    base_url = "https://localhost:" .. h.port .. "/" .. answer }
            end
            local t0 = core.monotonic()
            local data, err = client("endless_header"):get("/cgi-bin/x")
            assert.is_nil(data)
            assert.equal("transport", err.kind, tostring(err))
            assert.is_true(core.monotonic() - t0 < 2 + 1)
            t0 = core.monotonic()
            data, err = client("drip_body"):get("/cgi-bin/x")
            assert.is_nil(data)
            assert.is_true(core.monotonic() - t0 < 2 + 1)
            assert.equal("timeout", err.kind, tostring(err))
        end)
    end)
end)
