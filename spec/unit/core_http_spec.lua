-- wecom.core.http_session: argument checks and failures that need no HTTP
-- server (closed ports, a listener that never answers, bad URLs and CAs).
-- The real HTTPS exchanges are in spec/integration/core_http_spec.lua.
local core = require "wecom.core"
local socket = require "socket"

local SECRET = "tok_" .. core.nonce(24)

-- A TCP port on 127.0.0.1 that nothing listens on.
local function closed_port()
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    server:close()
    return port
end

-- A listener that never accepts: the kernel completes the TCP handshake,
-- then nothing is ever said, so TLS stalls until the client's timeout.
local function silent_listener()
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    return server, port
end

-- A failed request() returns nil, message, kind, curl_code (the core's one
-- failure shape); this checks the shape and gives the three as a table.
local function failure(res, message, kind, curl_code, ...)
    assert.is_nil(res)
    assert.is_string(message)
    assert.is_string(kind)
    assert.is_number(curl_code)
    assert.equal(0, select("#", ...))
    return { message = message, kind = kind, curl_code = curl_code }
end

-- The same from a poll() entry: { id =, err = message, code = kind, curl_code = }.
local function entry_failure(r)
    assert.is_nil(r.res)
    assert.is_string(r.err)
    assert.is_string(r.code)
    assert.is_number(r.curl_code)
    return { message = r.err, kind = r.code, curl_code = r.curl_code }
end

local function assert_no_secret(err)
    assert.is_nil(err.message:find(SECRET, 1, true))
    assert.is_nil(err.message:find("access_token", 1, true))
end

describe("core.http_session options", function()
    it("creates a session with defaults or with every option", function()
        local s = core.http_session()
        assert.equal(0, s:pending())
        s:close()
        s = core.http_session{
            ca_file = "/etc/ssl/certs/ca-certificates.crt", timeout = 1.5, connect_timeout = 0.5,
            proxy = "http://user:" .. SECRET .. "@127.0.0.1:3128", noproxy = "localhost",
            user_agent = "spec/1.0", max_body = 1024, max_connections = 4, reuse = false, allow_http = true,
        }
        assert.is_nil(tostring(s):find(SECRET, 1, true))
        assert.matches("wecom.core.http_session", tostring(s), 1, true)
        s:close()
    end)

    it("raises on unknown options, naming them", function()
        assert.has_error(function() core.http_session{ ca_flie = "/tmp/ca.pem" } end,
            "wecom.core.http_session: unknown option 'ca_flie' in opts")
        assert.has_error(function() core.http_session{ verify = false } end)
    end)

    it("raises on options of the wrong type or range", function()
        assert.has_error(function() core.http_session("fast") end)
        assert.has_error(function() core.http_session{ timeout = "5" } end,
            "wecom.core.http_session: opts.timeout must be a number of seconds in (0, 86400] (got string)")
        assert.has_error(function() core.http_session{ timeout = 0 } end)
        assert.has_error(function() core.http_session{ timeout = -1 } end)
        assert.has_error(function() core.http_session{ connect_timeout = 0 / 0 } end)
        assert.has_error(function() core.http_session{ ca_file = 1 } end,
            "wecom.core.http_session: opts.ca_file must be a string (got number 1)")
        assert.has_error(function() core.http_session{ proxy = true } end)
        assert.has_error(function() core.http_session{ max_body = 0 } end)
        assert.has_error(function() core.http_session{ max_body = 1.5 } end,
            "wecom.core.http_session: opts.max_body must be an integer in [1, 1073741824] (got number 1.5)")
        assert.has_error(function() core.http_session{ max_connections = 0 } end)
        assert.has_error(function() core.http_session{ reuse = "no" } end,
            "wecom.core.http_session: opts.reuse must be a boolean (got string)")
        assert.has_error(function() core.http_session{ ca_file = "a\0b" } end,
            "wecom.core.http_session: opts.ca_file must be a string without NUL bytes (got string)")
    end)
end)

describe("core.http_session requests", function()
    local s
    before_each(function() s = core.http_session{ timeout = 2 } end)
    after_each(function() s:close() end)

    it("raises on malformed request tables", function()
        local url = "https://127.0.0.1:" .. closed_port() .. "/"
        assert.has_error(function() s:request() end)
        assert.has_error(function() s:request{} end,
            "wecom.core.http_session:request: req.url must be a string (got nil)")
        assert.has_error(function() s:request{ url = 42 } end)
        assert.has_error(function() s:request{ url = url, method = "get" } end,
            "wecom.core.http_session:request: req.method must be 1..16 upper-case letters (got 'get')")
        assert.has_error(function() s:request{ url = url, method = "" } end)
        assert.has_error(function() s:request{ url = url, method = 1 } end)
        assert.has_error(function() s:request{ url = url, body = {} } end)
        assert.has_error(function() s:request{ url = url, body = "x" } end,
            "wecom.core.http_session:request: a GET request cannot have a body")
        assert.has_error(function() s:request{ url = url, headers = "X-A: 1" } end)
        assert.has_error(function() s:request{ url = url, headers = { "X-A: 1" } } end)
        assert.has_error(function() s:request{ url = url, headers = { ["X-A"] = 1 } } end)
        assert.has_error(function() s:request{ url = url, headers = { ["X A"] = "1" } } end)
        assert.has_error(function() s:request{ url = url, headers = { ["X-A"] = "1\r\nX-Injected: 1" } } end,
            "wecom.core.http_session:request: req.headers: header 'X-A' has a CR, LF or NUL in its value")
        assert.has_error(function() s:request{ url = url, timeout = 0 } end)
        assert.has_error(function() s:request{ url = url, max_body = -1 } end)
        assert.has_error(function() s:request{ url = url, retries = 3 } end,
            "wecom.core.http_session:request: unknown option 'retries' in req")
        assert.has_error(function() s:submit{ url = url, method = "get" } end,
            "wecom.core.http_session:submit: req.method must be 1..16 upper-case letters (got 'get')")
        assert.has_error(function() s.request({}, { url = url }) end,
            "wecom.core.http_session:request: expected a wecom.core.http_session (got table)")
        assert.equal(0, s:pending())
    end)

    it("reports a refused connection as a transport error without the query string", function()
        local err = failure(s:request{
            url = "https://127.0.0.1:" .. closed_port() .. "/cgi-bin/x?access_token=" .. SECRET,
        })
        assert.equal("transport", err.kind)
        assert.equal(7, err.curl_code)   -- CURLE_COULDNT_CONNECT
        assert.matches("connect", err.message)
        assert_no_secret(err)
    end)

    it("reports a malformed URL as a transport error", function()
        local err = failure(s:request{ url = "https://127.0.0.1:99999/x?access_token=" .. SECRET })
        assert.equal("transport", err.kind)
        assert.equal(3, err.curl_code)   -- CURLE_URL_MALFORMAT
        assert_no_secret(err)
        local err2 = failure(s:request{ url = "no scheme at all?access_token=" .. SECRET })
        assert.equal("transport", err2.kind)
        assert_no_secret(err2)
    end)

    it("refuses plain http:// unless allow_http is set", function()
        local port = closed_port()
        local err = failure(s:request{ url = "http://127.0.0.1:" .. port .. "/x?access_token=" .. SECRET })
        assert.equal("transport", err.kind)
        assert.equal(1, err.curl_code)   -- CURLE_UNSUPPORTED_PROTOCOL: nothing was sent
        assert.matches("https://", err.message, 1, true)
        assert_no_secret(err)
        local plain = core.http_session{ allow_http = true, timeout = 2 }
        local err2 = failure(plain:request{ url = "http://127.0.0.1:" .. port .. "/x" })
        plain:close()
        assert.equal(7, err2.curl_code)  -- it tried to connect
    end)

    it("times out on a server that accepts but never answers", function()
        local server, port = silent_listener()
        local err = failure(s:request{ url = "https://127.0.0.1:" .. port .. "/x?access_token=" .. SECRET,
                                       timeout = 0.2 })
        server:close()
        assert.equal("timeout", err.kind)
        assert.equal(28, err.curl_code)  -- CURLE_OPERATION_TIMEDOUT
        assert_no_secret(err)
    end)

    it("reports an unreadable ca_file as a tls error", function()
        local server, port = silent_listener()
        local bad = core.http_session{ ca_file = "/nonexistent/ca.pem", timeout = 2 }
        local err = failure(bad:request{ url = "https://127.0.0.1:" .. port .. "/x" })
        bad:close()
        server:close()
        assert.equal("tls", err.kind)
        assert.equal(77, err.curl_code)  -- CURLE_SSL_CACERT_BADFILE
    end)

    it("sends through the proxy option, and skips it for noproxy hosts", function()
        local target, proxy_port = closed_port(), closed_port()
        -- noproxy = "" also overrides a no_proxy variable in the environment
        local via = core.http_session{ proxy = "http://127.0.0.1:" .. proxy_port, noproxy = "", timeout = 2 }
        local err = failure(via:request{ url = "https://127.0.0.1:" .. target .. "/x" })
        via:close()
        assert.equal("transport", err.kind)
        assert.matches("port " .. proxy_port, err.message, 1, true)
        local direct = core.http_session{
            proxy = "http://127.0.0.1:" .. proxy_port, noproxy = "127.0.0.1", timeout = 2,
        }
        local err2 = failure(direct:request{ url = "https://127.0.0.1:" .. target .. "/x" })
        direct:close()
        assert.matches("port " .. target, err2.message, 1, true)
    end)

    it("honours the https_proxy environment variable", function()
        local target, proxy_port = closed_port(), closed_port()
        local interpreter = require("helpers.child").interpreter
        local script = ("local s = require('wecom.core').http_session{ timeout = 2 }"
            .. " local _, err = s:request{ url = 'https://127.0.0.1:%d/x' } io.write(err)"):format(target)
        local cmd = ("env -u no_proxy -u NO_PROXY https_proxy=http://127.0.0.1:%d LUA_CPATH='%s' %s -e \"%s\" 2>&1")
            :format(proxy_port, package.cpath, interpreter, script)
        local p = assert(io.popen(cmd))
        local out = p:read("*a")
        p:close()
        assert.matches("port " .. proxy_port, out, 1, true)
    end)
end)

describe("core.http_session submit/poll", function()
    it("returns every submitted request exactly once, by id", function()
        local s = core.http_session{ timeout = 2 }
        local base = "https://127.0.0.1:" .. closed_port() .. "/n"
        local want = {}
        for i = 1, 5 do
            local id = s:submit{ url = base .. i }
            assert.is_number(id)
            assert.is_nil(want[id])
            want[id] = true
        end
        assert.equal(5, s:pending())
        local seen = 0
        while s:pending() > 0 do
            for _, r in ipairs(s:poll(1)) do
                assert.is_true(want[r.id])
                want[r.id] = nil
                assert.equal("transport", entry_failure(r).kind)
                seen = seen + 1
            end
        end
        assert.equal(5, seen)
        assert.same({}, s:poll(0))
        s:close()
    end)

    it("returns an empty list when the timeout passes first", function()
        local server, port = silent_listener()
        local s = core.http_session{ timeout = 5 }
        s:submit{ url = "https://127.0.0.1:" .. port .. "/" }
        assert.same({}, s:poll(0.05))
        assert.equal(1, s:pending())
        s:close()   -- with the request still in flight
        server:close()
    end)

    it("keeps results that finished during request() for the next poll", function()
        local s = core.http_session{ timeout = 2 }
        local url = "https://127.0.0.1:" .. closed_port() .. "/"
        local id = s:submit{ url = url }
        local err = failure(s:request{ url = url })
        assert.equal("transport", err.kind)
        assert.equal(1, s:pending())
        local results = s:poll(1)
        assert.equal(1, #results)
        assert.equal(id, results[1].id)
        s:close()
    end)

    it("raises on a bad poll timeout", function()
        local s = core.http_session()
        assert.has_error(function() s:poll(-1) end,
            "wecom.core.http_session:poll: timeout must be a number of seconds in [0, 86400] (got number -1)")
        assert.has_error(function() s:poll("soon") end)
        s:close()
    end)
end)

describe("core.http_session lifetime", function()
    it("close() is idempotent and later use raises", function()
        local s = core.http_session()
        s:close()
        s:close()
        assert.equal(0, s:pending())
        assert.matches("closed", tostring(s))
        assert.has_error(function() s:request{ url = "https://127.0.0.1/" } end,
            "wecom.core.http_session:request: attempt to use a closed http session")
        assert.has_error(function() s:poll(0) end)
    end)

    it("is released by the garbage collector with requests in flight", function()
        local server, port = silent_listener()
        for _ = 1, 20 do
            local s = core.http_session{ timeout = 5 }
            s:submit{ url = "https://127.0.0.1:" .. port .. "/" }
            s:poll(0)
        end
        collectgarbage()
        collectgarbage()
        server:close()
    end)

    if _VERSION == "Lua 5.4" then
        it("closes on leaving a <close> scope", function()
            local chunk = assert(load([[
                local core = ...
                local kept
                do
                    local s <close> = core.http_session()
                    kept = s
                end
                return kept
            ]]))
            local s = chunk(core)
            assert.matches("closed", tostring(s))
        end)
    end
end)

-- HTTP handling (status, headers, bodies, limits, keep-alive) against a
-- scripted plain-HTTP peer in this process: submit, then play the server
-- between polls.  allow_http is needed only because the peer has no TLS.
describe("core.http_session response handling", function()
    local server, port, s

    before_each(function()
        server = assert(socket.bind("127.0.0.1", 0))
        server:settimeout(0)
        port = select(2, server:getsockname())
        s = core.http_session{ allow_http = true, timeout = 5 }
    end)

    after_each(function()
        s:close()
        server:close()
    end)

    local function accept()
        for _ = 1, 500 do
            local peer = server:accept()
            if peer then
                peer:settimeout(2)
                return peer
            end
            s:poll(0.01)
        end
        error("the client never connected")
    end

    -- Reads one request: method line, lower-cased headers, body.
    local function read_request(peer)
        local line = assert(peer:receive("*l"))
        local headers = {}
        for header in function() return peer:receive("*l") end do
            if header == "" then break end
            local name, value = header:match("^([^:]+):%s*(.*)$")
            headers[name:lower()] = value
        end
        local body = ""
        local length = tonumber(headers["content-length"])
        if length and length > 0 then
            body = assert(peer:receive(length))
        end
        return { line = line, headers = headers, body = body }
    end

    local function wait(id)
        for _ = 1, 500 do
            for _, r in ipairs(s:poll(0.01)) do
                if r.id == id then return r end
            end
        end
        error("request " .. id .. " never finished")
    end

    local function url(path)
        return "http://127.0.0.1:" .. port .. (path or "/")
    end

    -- a GET of /1 answered on a new connection, kept alive: -> that peer
    local function first_request()
        local first = s:submit{ url = url("/1") }
        local peer = accept()
        read_request(peer)
        peer:send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
        assert.equal(1, wait(first).res.new_connections)
        return peer
    end

    -- the GET of /2 (submitted as id) read and answered on peer: -> its entry
    local function second_request(peer, id)
        assert.equal("GET /2 HTTP/1.1", read_request(peer).line)
        peer:send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")
        local r = wait(id)
        peer:close()
        assert.equal("2", r.res.body)
        return r
    end

    -- exchange(request, answer) -> the finished entry and the request the
    -- peer read: the peer answers with the raw text answer, then closes
    local function exchange(request, answer)
        local id = s:submit(request)
        local peer = accept()
        local req = read_request(peer)
        peer:send(answer)
        local r = wait(id)
        peer:close()
        return r, req
    end

    it("sends method, headers and body, and returns status, headers and body", function()
        local r, req = exchange({ method = "POST", url = url("/cgi-bin/x?access_token=t"),
            headers = { ["Content-Type"] = "application/json", ["X-Trace"] = "abc" }, body = '{"a":1}' },
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nSet-Cookie: a=1\r\n"
            .. "X-Empty:\r\nset-cookie: b=2\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
        assert.equal("POST /cgi-bin/x?access_token=t HTTP/1.1", req.line)
        assert.equal("application/json", req.headers["content-type"])
        assert.equal("abc", req.headers["x-trace"])
        assert.is_nil(req.headers["expect"])
        assert.matches("^wecom%-lua/", req.headers["user-agent"])
        assert.equal('{"a":1}', req.body)
        assert.equal(201, r.res.status)
        assert.equal('{"ok":true}', r.res.body)
        assert.equal("application/json", r.res.headers["content-type"])
        assert.equal("a=1, b=2", r.res.headers["set-cookie"])
        assert.equal("", r.res.headers["x-empty"])
        assert.is_nil(r.res.headers["Content-Type"])
    end)

    it("keeps only the final response's headers after a 100 Continue", function()
        local r = exchange({ method = "PUT", url = url(), body = "x" }, "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
            .. "HTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 2\r\n\r\nok")
        assert.equal(200, r.res.status)
        assert.equal("ok", r.res.body)
        assert.is_nil(r.res.headers["x-interim"])
        assert.equal("1", r.res.headers["x-final"])
    end)

    it("reuses the kept-alive connection for the next request", function()
        local peer = first_request()
        local second = s:submit{ url = url("/2") }
        s:poll(0.01)
        assert.is_nil(server:accept())    -- no new connection arrived
        assert.equal(0, second_request(peer, second).res.new_connections)
    end)

    for _, how in ipairs { "closed", "reset" } do
        it("opens a new connection when the peer " .. how .. " the idle kept-alive one", function()
            local peer = first_request()
            if how == "reset" then
                assert(peer:setoption("linger", { on = true, timeout = 0 }))
            end
            peer:close()
            assert.same({}, s:poll(0.05))     -- nothing in flight: the idle socket's news only
            local second = s:submit{ url = url("/2") }
            assert.equal(1, second_request(accept(), second).res.new_connections)
        end)
    end

    it("opens a new connection per call with reuse = false", function()
        local fresh = core.http_session{ allow_http = true, reuse = false, timeout = 5 }
        s:close()
        s = fresh
        for i = 1, 2 do
            local id = s:submit{ url = url("/" .. i) }
            local peer = accept()
            read_request(peer)
            peer:send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" .. i)
            assert.equal(1, wait(id).res.new_connections)
            peer:close()
        end
    end)

    -- Every size limit fails the same way (kind "transport", curl_code 63 =
    -- CURLE_FILESIZE_EXCEEDED, as the cosocket transport reports it), so the
    -- retry policy can tell an over-size answer from a broken connection.
    it("aborts a body larger than max_body, with or without a Content-Length", function()
        local err = entry_failure(exchange({ url = url(), max_body = 10 },
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n01234567890"))
        assert.equal("transport", err.kind)
        assert.equal(63, err.curl_code)
        assert.equal("response body exceeds the size limit (max_body 10 bytes)", err.message)

        err = entry_failure(exchange({ url = url(), max_body = 10 },
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n678901\r\n0\r\n\r\n"))
        assert.equal("transport", err.kind)
        assert.equal(63, err.curl_code)    -- was 23 (CURLE_WRITE_ERROR) without a Content-Length
        assert.equal("response body exceeds the size limit (max_body 10 bytes)", err.message)
    end)

    it("aborts a header block over 256 KiB, naming the header limit", function()
        local id = s:submit{ url = url(), max_body = 1024 * 1024 }
        local peer = accept()
        read_request(peer)
        peer:send("HTTP/1.1 200 OK\r\n")
        local filler = ": " .. string.rep("a", 1000) .. "\r\n"
        for i = 1, 300 do
            if not peer:send("X-Filler-" .. i .. filler) then break end
        end
        local r = wait(id)
        peer:close()
        local err = entry_failure(r)
        assert.equal("transport", err.kind)
        assert.equal(63, err.curl_code)
        -- it said "max_body 1048576 bytes", a limit that was not the one hit
        assert.equal("response headers exceed the size limit (262144 bytes)", err.message)
    end)

    it("returns a failed request() as nil, message, kind, curl_code", function()
        local res, message, kind, curl_code = s:request{ url = url(), max_body = 10, timeout = 0.5 }
        assert.is_nil(res)
        assert.equal("timeout", kind)     -- no peer answered
        assert.equal(28, curl_code)
        assert.matches("^Timeout was reached", message)
    end)

    it("accepts a body of exactly max_body bytes", function()
        local r = exchange({ url = url(), max_body = 10 }, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
        assert.equal("0123456789", r.res.body)
    end)

    it("reports a connection closed without an answer as a transport error", function()
        local id = s:submit{ url = url("/x?access_token=" .. SECRET) }
        local peer = accept()
        read_request(peer)
        peer:close()
        local err = entry_failure(wait(id))
        assert.equal("transport", err.kind)
        assert.equal(52, err.curl_code)   -- CURLE_GOT_NOTHING
        assert_no_secret(err)
    end)

    it("reports a truncated body as a transport error", function()
        local id = s:submit{ url = url() }
        local peer = accept()
        read_request(peer)
        peer:send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"errcode\":")
        peer:close()
        local err = entry_failure(wait(id))
        assert.equal("transport", err.kind)
        assert.equal(18, err.curl_code)   -- CURLE_PARTIAL_FILE
    end)
end)
