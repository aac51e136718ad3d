-- The cosocket transport in a real nginx worker against a hostile HTTPS
-- server (spec/helpers/hostile.lua): an endless status, header, chunk-size
-- or trailer line ends in a "transport" error at a byte cap with the worker
-- unharmed; a one-byte drip ends in a "timeout" error within `timeout`.
-- (Issue 10, items 1 and 2; spec/integration/hostile_http_spec.lua holds
-- the libcurl transport to the same.)

local cjson = require "cjson"
local hostile = require "helpers.hostile"
local nginx = require "helpers.nginx"
local url = require "wecom.url"

local CONF = nginx.conf {
    env = { "SPEC_HOSTILE" },
    trusted = "${ca_file}",
    servers = { { text = [[
        location /run/ {
            content_by_lua_block { require("hostile_cases").run() }
        }
]] } },
}

-- what an endless answer sends at most: enough to show a client without a
-- cap reading all of it, small enough not to hurt the machine when it does
local LIMIT = 128 * 1024 * 1024
local MiB = 1024 * 1024

describe("the cosocket transport against a hostile server", function()
    local h, site, pid

    local function run(name, query)
        local status, body = site:request("GET", "/run/" .. name .. (query or ""))
        assert.equal(200, status, body)
        return cjson.decode(body)
    end

    local function get(path, extra)
        return run("get", "?path=" .. url.escape(path) .. (extra or ""))
    end

    setup(function()
        h = hostile.start()
        site = nginx.start {
            conf = CONF:gsub("%${ca_file}", h.ca_file),
            env = { SPEC_HOSTILE = "https://localhost:" .. h.port },
        }
        pid = run("pid").pid
    end)

    teardown(function()
        if site then
            site:stop()
        end
        if h then
            h:stop()
        end
    end)

    it("answers a well-formed request (the server works)", function()
        local res = get("/ok")
        assert.is_nil(res.err)
        assert.equal(200, res.status)
        assert.equal("ok", res.body)
    end)

    for _, name in ipairs { "endless_header", "endless_status", "many_headers", "endless_trailer" } do
        it("stops " .. name .. " at the 256 KiB header cap, worker unharmed", function()
            local res = get("/" .. name .. "?limit=" .. LIMIT)
            assert.is_nil(res.status)
            assert.equal("transport", res.err.kind)
            assert.equal(63, res.err.curl_code)
            assert.truthy(res.err.message:find("response header from localhost:" .. h.port
                .. " larger than 262144 bytes", 1, true), res.err.message)
            -- the client hung up long before the server was done
            local sent = h:sent(name)
            assert.is_true(sent > 0 and sent < LIMIT / 4, "the server sent " .. sent .. " bytes")
            assert.is_true(res.grew < 32 * MiB, "the worker's peak RSS grew by " .. res.grew)
            assert.is_true(res.elapsed < 2, "took " .. res.elapsed .. " s")
            -- the same worker goes on serving
            assert.equal(pid, res.pid)
            assert.equal(pid, run("pid").pid)
            assert.equal("ok", get("/ok").body)
        end)
    end

    it("stops an endless chunk-size line at 1 KiB", function()
        local res = get("/endless_chunk?limit=" .. LIMIT)
        assert.equal("transport", res.err.kind)
        assert.equal(8, res.err.curl_code)
        assert.truthy(res.err.message:find("chunk size line longer than 1024 bytes", 1, true), res.err.message)
        local sent = h:sent("endless_chunk")
        assert.is_true(sent > 0 and sent < LIMIT / 4, "the server sent " .. sent .. " bytes")
        assert.is_true(res.grew < 32 * MiB, "the worker's peak RSS grew by " .. res.grew)
        assert.equal(pid, run("pid").pid)
    end)

    for _, name in ipairs { "drip_header", "drip_body", "drip_chunked", "drip_close" } do
        it("ends " .. name .. " within timeout, with kind 'timeout'", function()
            -- one byte every 0.5 s for 20 s: each byte is well within any
            -- idle timeout, only a deadline ends it in time
            local res = get("/" .. name .. "?n=40&every=0.5")
            assert.is_nil(res.status)
            assert.equal("timeout", res.err.kind)
            assert.equal(28, res.err.curl_code)
            assert.is_true(res.elapsed < 2 + 1, "took " .. res.elapsed .. " s")
        end)
    end

    it("keeps the per-request timeout a deadline too", function()
        local res = get("/drip_body?n=40&every=0.5", "&timeout=1")
        assert.equal("timeout", res.err.kind)
        assert.is_true(res.elapsed < 1 + 1, "took " .. res.elapsed .. " s")
    end)

    it("ends a TLS handshake nobody answers within timeout", function()
        -- a listening socket that never accepts: the kernel completes the
        -- TCP handshake, then nothing comes back
        local silent = assert(require("socket").bind("127.0.0.1", 0))
        local _, port = silent:getsockname()
        local res = get("https://localhost:" .. port .. "/x", "&timeout=1")
        silent:close()
        assert.equal("timeout", res.err.kind, res.err.message)
        assert.equal(28, res.err.curl_code)
        assert.is_true(res.elapsed < 1 + 1, "took " .. res.elapsed .. " s")
    end)

    it("refuses a body over max_body (a transport option now)", function()
        local res = get("/drip_body?n=40&every=0.01", "&max_body=10")
        assert.equal("transport", res.err.kind)
        assert.equal(63, res.err.curl_code)
        assert.truthy(res.err.message:find("larger than 10 bytes", 1, true), res.err.message)
    end)

    it("gives a client at that base_url a bounded transport or timeout error", function()
        local res = run("client", "?answer=endless_header")
        assert.is_false(res.ok)
        assert.equal("transport", res.err.kind, res.err.text)
        assert.is_true(res.elapsed < 2 + 1)
        res = run("client", "?answer=drip_header")
        assert.is_false(res.ok)
        assert.equal("timeout", res.err.kind, res.err.text)
        assert.is_true(res.elapsed < 2 + 1, "took " .. res.elapsed .. " s")
        assert.equal(pid, run("pid").pid)
    end)
end)
