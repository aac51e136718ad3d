-- wecom.transport.http1, the response reader both cosocket users share,
-- over a scripted socket and clock (the real cosockets face real servers
-- in spec/openresty/ngx_spec.lua and hostile_spec.lua).

local http1 = require "wecom.transport.http1"

-- A socket that hands out `script` in order: strings are bytes that
-- arrive (cut to receiveany's max), { wait = s } lets s seconds pass on the
-- clock (a "timeout" when that is past the socket's timeout), { err = e }
-- fails the read.  After the script: "closed".
local function scripted(script)
    local clock = { t = 0 }
    local sock = { reads = 0, timeouts = {} }
    function sock.settimeout(_, ms)
        sock.timeout = ms / 1000
        sock.timeouts[#sock.timeouts + 1] = ms
    end
    function sock.receiveany(_, max)
        sock.reads = sock.reads + 1
        while true do
            local item = table.remove(script, 1)
            if item == nil then
                return nil, "closed"
            end
            if type(item) == "string" then
                if #item > max then
                    table.insert(script, 1, item:sub(max + 1))
                    item = item:sub(1, max)
                end
                return item
            end
            if item.err then
                return nil, item.err
            end
            if item.wait > sock.timeout then
                clock.t = clock.t + sock.timeout
                return nil, "timeout"
            end
            clock.t = clock.t + item.wait
        end
    end
    return sock, function() return clock.t end
end

local function read(script, opts)
    local sock, now = scripted(script)
    local o = { where = "example.test:443", deadline = 5, now = now, max_body = 1024 * 1024 }
    for k, v in pairs(opts or {}) do
        o[k] = v
    end
    local res, second = http1.read_response(sock, o)
    return res, second, sock, now
end

describe("wecom.transport.http1.read_response", function()
    it("reads a Content-Length response split anywhere, with LF or CRLF line ends", function()
        local res, keepalive = read { "HTTP/1.1 200 OK\r", "\nContent-Length: 5\nX-A:  spaced \t\r\n",
            "\r\nhel", "lo" }
        assert.same({ status = 200, headers = { ["content-length"] = "5", ["x-a"] = "spaced" }, body = "hello" }, res)
        assert.is_true(keepalive)
    end)

    it("joins repeated headers and lower-cases names", function()
        local res = read { "HTTP/1.1 200 OK\r\nX-M: a\r\nx-m: b\r\nX-M: c\r\nContent-Length: 0\r\n\r\n" }
        assert.equal("a, b, c", res.headers["x-m"])
        assert.equal("", res.body)
    end)

    it("reads chunked bodies with extensions and trailers", function()
        local res, keepalive = read { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "5;name=v\r\nhello\r\n", "0006\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n" }
        assert.equal("hello world", res.body)
        assert.is_true(keepalive)
    end)

    it("reads a body that ends at close, and then the connection is not kept", function()
        local res, keepalive = read { "HTTP/1.1 200 OK\r\n\r\nuntil ", "the end" }
        assert.equal("until the end", res.body)
        assert.is_false(keepalive)
    end)

    it("skips interim 1xx responses", function()
        local res = read { "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n",
            "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok" }
        assert.equal(201, res.status)
        assert.equal("ok", res.body)
        assert.is_nil(res.headers.link)
    end)

    it("reads no body for HEAD, 204 and 304", function()
        local res = read({ "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" }, { head = true })
        assert.equal("", res.body)
        res = read { "HTTP/1.1 204 No Content\r\n\r\n" }
        assert.equal("", res.body)
        res = read { "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n" }
        assert.equal("", res.body)
    end)

    it("decides keepalive from the version and Connection", function()
        local _, k10 = read { "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n" }
        assert.is_false(k10)
        local _, k10ka = read { "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n" }
        assert.is_true(k10ka)
        local _, close = read { "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n" }
        assert.is_false(close)
        -- bytes past the response: out of step, not reused
        local _, extra = read { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA" }
        assert.is_false(extra)
    end)

    it("never reads past the body", function()
        local _, _, sock = read { "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n", string.rep("x", 70000) }
        -- the body's reads ask for at most what is still missing
        assert.equal(3, sock.reads)
    end)

    describe("refuses", function()
        local function refused(script, opts)
            local res, err = read(script, opts)
            assert.is_nil(res)
            return err
        end

        it("a reply that is not HTTP, and malformed header lines", function()
            local err = refused { "SSH-2.0-OpenSSH\r\n\r\n" }
            assert.same({ "transport", 8 }, { err.kind, err.curl_code })
            assert.truthy(err.message:find("bad HTTP response from example.test:443: malformed status line", 1, true))
            err = refused { "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n" }
            assert.truthy(err.message:find("malformed header line", 1, true))
            -- obsolete line folding
            err = refused { "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n" }
            assert.truthy(err.message:find("malformed header line", 1, true))
        end)

        it("a Content-Length that is not plain digits", function()
            for _, v in ipairs { "0x10", "-1", "1e3", " 5 x", "5, 5", "1234567890123456" } do
                local err = refused { "HTTP/1.1 200 OK\r\nContent-Length: " .. v .. "\r\n\r\n12345" }
                assert.truthy(err.message:find("malformed Content-Length", 1, true), v)
            end
        end)

        it("a malformed chunk", function()
            local err = refused { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" }
            assert.truthy(err.message:find("malformed chunk size", 1, true))
            err = refused { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX\r\n0\r\n\r\n" }
            assert.truthy(err.message:find("malformed chunk", 1, true))
        end)

        it("a header block over max_header bytes, counting the status line and every line end", function()
            local head = "HTTP/1.1 200 OK\r\nX-Pad: "
            local function block(pad)
                return head .. string.rep("p", pad) .. "\r\nContent-Length: 0\r\n\r\n"
            end
            -- exactly at the cap: accepted
            local size = #block(0)
            local res = read({ block(1000 - size) }, { max_header = 1000 })
            assert.equal(200, res.status)
            local err = refused({ block(1001 - size) }, { max_header = 1000 })
            assert.same({ "transport", 63 }, { err.kind, err.curl_code })
            assert.truthy(err.message:find("response header from example.test:443 larger than 1000 bytes", 1, true))
        end)

        it("an endless line without reading much past the cap", function()
            local script = { "HTTP/1.1 200 OK\r\nX-Endless: " }
            for i = 2, 100 do
                script[i] = string.rep("a", 65536)
            end
            local res, err, sock = read(script)
            assert.is_nil(res)
            assert.equal(63, err.curl_code)
            assert.truthy(err.message:find("larger than 262144 bytes", 1, true))
            -- 256 KiB in reads of 64 KiB, plus the first
            assert.is_true(sock.reads <= 6, "reads: " .. sock.reads)
        end)

        it("an endless status line, chunk-size line and trailer", function()
            local endless = string.rep("9", 300 * 1024)
            local err = refused { "HTTP/1.1 200 " .. endless }
            assert.equal(63, err.curl_code)
            err = refused { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" .. endless }
            assert.truthy(err.message:find("chunk size line longer than 1024 bytes", 1, true))
            err = refused { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: " .. endless }
            assert.equal(63, err.curl_code)
        end)

        it("more than 200 header lines", function()
            local err = refused { "HTTP/1.1 200 OK\r\n" .. string.rep("X-A: a\r\n", 201) .. "\r\n" }
            assert.truthy(err.message:find("more than 200 header lines", 1, true))
        end)

        it("a body over max_body, however it is framed", function()
            local err = refused({ "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world" }, { max_body = 10 })
            assert.same({ "transport", 63 }, { err.kind, err.curl_code })
            assert.truthy(err.message:find("response body from example.test:443 larger than 10 bytes", 1, true))
            err = refused({ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n" }, { max_body = 10 })
            assert.equal(63, err.curl_code)
            err = refused({ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n" },
                { max_body = 10 })
            assert.equal(63, err.curl_code)
            err = refused({ "HTTP/1.1 200 OK\r\n\r\nhello ", "world" }, { max_body = 10 })
            assert.equal(63, err.curl_code)
        end)
    end)

    describe("one deadline", function()
        it("ends a drip at the deadline although every byte comes in time", function()
            local script = { "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" }
            for _ = 1, 100 do
                script[#script + 1] = { wait = 0.5 }
                script[#script + 1] = "d"
            end
            local res, err, _, now = read(script, { deadline = 2 })
            assert.is_nil(res)
            assert.same({ "timeout", 28 }, { err.kind, err.curl_code })
            assert.truthy(err.message:find("reading from example.test:443 timed out", 1, true))
            assert.is_true(now() <= 2, "ended at " .. now())
        end)

        it("gives each read what is left of it", function()
            local _, _, sock = read({ { wait = 0.25 }, "HTTP/1.1 200 OK\r\n",
                { wait = 0.5 }, "Content-Length: 0\r\n\r\n" }, { deadline = 1 })
            assert.same({ 1000, 750 }, sock.timeouts)
        end)

        it("reads nothing once the deadline has passed", function()
            local res, err, sock = read({ "HTTP/1.1 200 OK\r\n" }, { deadline = 0 })
            assert.is_nil(res)
            assert.equal("timeout", err.kind)
            assert.equal(0, sock.reads)
        end)
    end)

    it("marks a close before any byte as `nothing` (a stale pooled connection)", function()
        local res, err = read {}
        assert.is_nil(res)
        assert.same({ "transport", 52, true }, { err.kind, err.curl_code, err.nothing })
        local _, reset = read { { err = "connection reset by peer" } }
        assert.is_true(reset.nothing)
        local _, late = read { "HTTP/1.1 200 OK\r\n" }
        assert.same({ 56 }, { late.curl_code })
        assert.is_nil(late.nothing)
    end)

    it("trims a value of many blanks in linear time", function()
        local blanks = string.rep(" ", 100 * 1024)
        local res = read { "HTTP/1.1 200 OK\r\nX-B:" .. blanks .. "x" .. blanks .. "\r\nContent-Length: 0\r\n\r\n" }
        assert.equal("x", res.headers["x-b"])
    end)
end)
