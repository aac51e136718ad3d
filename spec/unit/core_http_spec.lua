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
      "unknown http_session option 'ca_flie'")
    assert.has_error(function() core.http_session{ verify = false } end)
  end)

  it("raises on options of the wrong type or range", function()
    assert.has_error(function() core.http_session("fast") end)
    assert.has_error(function() core.http_session{ timeout = "5" } end, "option 'timeout' must be a number")
    assert.has_error(function() core.http_session{ timeout = 0 } end)
    assert.has_error(function() core.http_session{ timeout = -1 } end)
    assert.has_error(function() core.http_session{ connect_timeout = 0 / 0 } end)
    assert.has_error(function() core.http_session{ ca_file = 1 } end, "option 'ca_file' must be a string")
    assert.has_error(function() core.http_session{ proxy = true } end)
    assert.has_error(function() core.http_session{ max_body = 0 } end)
    assert.has_error(function() core.http_session{ max_body = 1.5 } end)
    assert.has_error(function() core.http_session{ max_connections = 0 } end)
    assert.has_error(function() core.http_session{ reuse = "no" } end, "option 'reuse' must be a boolean")
    assert.has_error(function() core.http_session{ ca_file = "a\0b" } end)
  end)
end)

describe("core.http_session requests", function()
  local s
  before_each(function() s = core.http_session{ timeout = 2 } end)
  after_each(function() s:close() end)

  it("raises on malformed request tables", function()
    local url = "https://127.0.0.1:" .. closed_port() .. "/"
    assert.has_error(function() s:request() end)
    assert.has_error(function() s:request{} end, "request field 'url' must be a string")
    assert.has_error(function() s:request{ url = 42 } end)
    assert.has_error(function() s:request{ url = url, method = "get" } end)
    assert.has_error(function() s:request{ url = url, method = "" } end)
    assert.has_error(function() s:request{ url = url, method = 1 } end)
    assert.has_error(function() s:request{ url = url, body = {} } end)
    assert.has_error(function() s:request{ url = url, body = "x" } end, "a GET request cannot have a body")
    assert.has_error(function() s:request{ url = url, headers = "X-A: 1" } end)
    assert.has_error(function() s:request{ url = url, headers = { "X-A: 1" } } end)
    assert.has_error(function() s:request{ url = url, headers = { ["X-A"] = 1 } } end)
    assert.has_error(function() s:request{ url = url, headers = { ["X A"] = "1" } } end)
    assert.has_error(function() s:request{ url = url, headers = { ["X-A"] = "1\r\nX-Injected: 1" } } end)
    assert.has_error(function() s:request{ url = url, timeout = 0 } end)
    assert.has_error(function() s:request{ url = url, max_body = -1 } end)
    assert.has_error(function() s:request{ url = url, retries = 3 } end, "unknown request option 'retries'")
    assert.has_error(function() s:submit{ url = url, method = "get" } end)
    assert.equal(0, s:pending())
  end)

  it("reports a refused connection as a transport error without the query string", function()
    local res, err = s:request{ url = "https://127.0.0.1:" .. closed_port() .. "/cgi-bin/x?access_token=" .. SECRET }
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.equal(7, err.curl_code)   -- CURLE_COULDNT_CONNECT
    assert.matches("connect", err.message)
    assert_no_secret(err)
  end)

  it("reports a malformed URL as a transport error", function()
    local res, err = s:request{ url = "https://127.0.0.1:99999/x?access_token=" .. SECRET }
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.equal(3, err.curl_code)   -- CURLE_URL_MALFORMAT
    assert_no_secret(err)
    local _, err2 = s:request{ url = "no scheme at all?access_token=" .. SECRET }
    assert.equal("transport", err2.kind)
    assert_no_secret(err2)
  end)

  it("refuses plain http:// unless allow_http is set", function()
    local port = closed_port()
    local _, err = s:request{ url = "http://127.0.0.1:" .. port .. "/x?access_token=" .. SECRET }
    assert.equal("transport", err.kind)
    assert.equal(1, err.curl_code)   -- CURLE_UNSUPPORTED_PROTOCOL: nothing was sent
    assert.matches("https://", err.message, 1, true)
    assert_no_secret(err)
    local plain = core.http_session{ allow_http = true, timeout = 2 }
    local _, err2 = plain:request{ url = "http://127.0.0.1:" .. port .. "/x" }
    plain:close()
    assert.equal(7, err2.curl_code)  -- it tried to connect
  end)

  it("times out on a server that accepts but never answers", function()
    local server, port = silent_listener()
    local res, err = s:request{ url = "https://127.0.0.1:" .. port .. "/x?access_token=" .. SECRET, timeout = 0.2 }
    server:close()
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    assert.equal(28, err.curl_code)  -- CURLE_OPERATION_TIMEDOUT
    assert_no_secret(err)
  end)

  it("reports an unreadable ca_file as a tls error", function()
    local server, port = silent_listener()
    local bad = core.http_session{ ca_file = "/nonexistent/ca.pem", timeout = 2 }
    local res, err = bad:request{ url = "https://127.0.0.1:" .. port .. "/x" }
    bad:close()
    server:close()
    assert.is_nil(res)
    assert.equal("tls", err.kind)
    assert.equal(77, err.curl_code)  -- CURLE_SSL_CACERT_BADFILE
  end)

  it("sends through the proxy option, and skips it for noproxy hosts", function()
    local target, proxy_port = closed_port(), closed_port()
    local via = core.http_session{ proxy = "http://127.0.0.1:" .. proxy_port, timeout = 2 }
    local _, err = via:request{ url = "https://127.0.0.1:" .. target .. "/x" }
    via:close()
    assert.equal("transport", err.kind)
    assert.matches("port " .. proxy_port, err.message, 1, true)
    local direct = core.http_session{ proxy = "http://127.0.0.1:" .. proxy_port, noproxy = "127.0.0.1", timeout = 2 }
    local _, err2 = direct:request{ url = "https://127.0.0.1:" .. target .. "/x" }
    direct:close()
    assert.matches("port " .. target, err2.message, 1, true)
  end)

  it("honours the https_proxy environment variable", function()
    local target, proxy_port = closed_port(), closed_port()
    local interpreter = rawget(_G, "jit") and "luajit" or "lua5.4"
    local script = ("local s = require('wecom.core').http_session{ timeout = 2 }"
      .. " local _, err = s:request{ url = 'https://127.0.0.1:%d/x' } io.write(err.message)"):format(target)
    local cmd = ("https_proxy=http://127.0.0.1:%d LUA_CPATH='%s' %s -e \"%s\" 2>&1")
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
        assert.is_nil(r.res)
        assert.equal("transport", r.err.kind)
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
    local res, err = s:request{ url = url }
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.equal(1, s:pending())
    local results = s:poll(1)
    assert.equal(1, #results)
    assert.equal(id, results[1].id)
    s:close()
  end)

  it("raises on a bad poll timeout", function()
    local s = core.http_session()
    assert.has_error(function() s:poll(-1) end)
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
      "attempt to use a closed http session")
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
