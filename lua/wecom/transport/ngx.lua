-- wecom.transport.ngx: HTTPS over nginx cosockets (OpenResty, or nginx +
-- lua-nginx-module).  wecom.transport picks it once, at load, under nginx.
--
-- A blocking libcurl call inside nginx would stall every request of the
-- worker, so inside nginx all HTTP goes through ngx.socket.tcp: HTTP/1.1,
-- Content-Length and chunked bodies, a keepalive pool per host:port, TLS
-- with SNI and verification always on.
--
-- What nginx decides, not this module:
--   * trusted CAs: the `lua_ssl_trusted_certificate` directive (and
--     `lua_ssl_verify_depth`).  nginx cannot take a CA file per request, so
--     the client's `ca_file` is ignored here (a warning says so, once).
--   * host names: the `resolver` directive.  "localhost" is connected to
--     127.0.0.1 without it, since no DNS server knows that name.
--   * hostname checks: nginx matches the certificate's DNS names only, so a
--     base_url with an IP address cannot pass verification; use a name.  A
--     failed handshake with an IP address says so (the cause is otherwise
--     only in error.log).
-- Proxies are not supported (an error at construction says so).
--
-- Bounded like the libcurl transport: `timeout` is a deadline for the whole
-- request (connect, TLS, send, the response to its last byte), and the
-- response is read by wecom.transport.http1 (header block 256 KiB, body
-- max_body), never with an unbounded line read.
--
-- Errors have the curl transport's shape: { kind = "transport" | "timeout"
-- | "tls", message, curl_code } with libcurl's code for the same failure, so
-- the client's retry policy treats both transports alike.  Messages name
-- host:port, never the path or query (an access_token lives there).

local error = error
local pairs = pairs
local pcall = pcall
local require = require
local setmetatable = setmetatable
local str_find = string.find
local str_lower = string.lower
local str_match = string.match
local str_sub = string.sub
local tonumber = tonumber
local tostring = tostring
local type = type

local env = require "wecom.env"
local http1 = require "wecom.transport.http1"

local ngx = env.ngx

local _M = { name = "ngx" }

local mt = { __index = _M }

local YIELDING_PHASES = env.YIELDING_PHASES

local KEEPALIVE_IDLE_MS = 60000
-- a reused keepalive connection the server has closed meanwhile is retried
-- on another one; a fresh connection is never retried here
local MAX_STALE_RETRIES = 2

local CURLE = http1.CURLE
local fail, ms, io_error = http1.fail, http1.ms, http1.io_error

-- TLS sessions per pool, per worker: new connections resume them
local tls_sessions = {}

local warned_ca_file = false

-- new(opts) -> transport; opts as wecom.transport documents them
function _M.new(opts)
    local o = require("wecom.transport").options("wecom.transport.ngx.new", opts)
    if o.proxy ~= nil then
        error("wecom: option 'proxy' is not supported inside nginx (the cosocket transport"
            .. " connects directly; route egress at the network level instead)", 4)
    end
    if o.ca_file ~= nil and not warned_ca_file then
        warned_ca_file = true
        env.log("warn", "wecom: option 'ca_file' is ignored inside nginx; the trusted CAs"
            .. " come from the lua_ssl_trusted_certificate directive")
    end
    return setmetatable({
        timeout = o.timeout,
        connect_timeout = o.connect_timeout,
        max_body = o.max_body,
        user_agent = o.user_agent,
    }, mt)
end

-- https://host[:port]/path?query -> host, port, target
local function split_url(url)
    local host, rest = str_match(url, "^https://%[([^%]]+)%](.*)$")
    if not host then
        host, rest = str_match(url, "^https://([^/:?#]+)(.*)$")
    end
    if not host then
        return nil
    end
    local port = 443
    local p, after = str_match(rest, "^:(%d+)(.*)$")
    if p then
        port = tonumber(p)
        rest = after
    end
    if rest == "" then
        rest = "/"
    elseif str_sub(rest, 1, 1) ~= "/" then
        if str_sub(rest, 1, 1) ~= "?" then
            return nil
        end
        rest = "/" .. rest
    end
    rest = str_match(rest, "^[^#]*")
    return host, port, rest
end
_M.split_url = split_url

local function phase_error(phase)
    error("wecom: HTTP requests are not possible in the " .. tostring(phase) .. " phase"
        .. " (nginx disables cosockets there); make the call from a request handler"
        .. " (rewrite/access/content) or a timer: ngx.timer.at(0, function(premature) ... end)", 3)
end

local function connect_error(where, err)
    if err == "timeout" then
        return fail("timeout", "connect to " .. where .. " timed out", CURLE.OPERATION_TIMEDOUT)
    end
    if str_find(err, "no resolver defined", 1, true) then
        return fail("transport", "cannot resolve " .. where .. ": no resolver defined"
            .. " (add a `resolver` directive to nginx's http block)", CURLE.COULDNT_RESOLVE_HOST)
    end
    if str_find(err, "resolve", 1, true) or str_find(err, "not found", 1, true) then
        return fail("transport", "cannot resolve " .. where .. ": " .. err, CURLE.COULDNT_RESOLVE_HOST)
    end
    return fail("transport", "connect to " .. where .. " failed: " .. err, CURLE.COULDNT_CONNECT)
end

-- an IPv4 or IPv6 address (split_url strips an IPv6 one of its brackets)
local function ip_literal(host)
    return str_find(host, ":", 1, true) ~= nil or str_match(host, "^%d+%.%d+%.%d+%.%d+$") ~= nil
end

local function tls_error(where, err, host, port)
    if err == "timeout" then
        return fail("timeout", "TLS handshake with " .. where .. " timed out", CURLE.OPERATION_TIMEDOUT)
    end
    err = tostring(err)
    if ip_literal(host) then
        -- whatever nginx said: it checks a certificate against host names,
        -- never an IP address, so no certificate passes here
        local example = (host == "::1" or str_find(host, "^127%.")) and (", e.g. https://localhost:" .. port) or ""
        return fail("tls", "TLS handshake with " .. where .. " failed: " .. err .. " (" .. host
            .. " is an IP address, and inside nginx a certificate is checked against host names only:"
            .. " use a host name the certificate covers" .. example .. ")", CURLE.PEER_FAILED_VERIFICATION)
    end
    if str_find(err, "certificate", 1, true) or str_find(err, "verif", 1, true) then
        return fail("tls", "TLS handshake with " .. where .. " failed: " .. err
            .. " (inside nginx the trusted CAs come from lua_ssl_trusted_certificate)",
            CURLE.PEER_FAILED_VERIFICATION)
    end
    return fail("tls", "TLS handshake with " .. where .. " failed: " .. err, CURLE.SSL_CONNECT_ERROR)
end

-- -> res, keepalive | nil, err | nil, nil, true when a reused connection turned
-- out to be closed before anything came back (try another one)
local function exchange(self, sock, where, req, target, host_header, deadline, reused)
    local headers = {
        req.method, " ", target, " HTTP/1.1\r\n",
        "Host: ", host_header, "\r\n",
        "User-Agent: ", self.user_agent, "\r\n",
        "Accept: application/json\r\n",
    }
    local n = #headers
    local user_headers = req.headers
    if user_headers then
        for k, v in pairs(user_headers) do
            local lk = str_lower(k)
            if lk ~= "host" and lk ~= "content-length" and lk ~= "connection"
                and lk ~= "transfer-encoding" then
                headers[n + 1] = k
                headers[n + 2] = ": "
                headers[n + 3] = v
                headers[n + 4] = "\r\n"
                n = n + 4
            end
        end
    end
    local body = req.body
    if body ~= nil or req.method == "POST" or req.method == "PUT" then
        headers[n + 1] = "Content-Length: " .. (body and #body or 0) .. "\r\n"
        n = n + 1
    end
    headers[n + 1] = "\r\n"
    headers[n + 2] = body

    -- API requests are small: the socket buffer takes them at once, so the
    -- send's own timeout (what is left of the deadline) bounds it
    local left = deadline - ngx.now()
    if left <= 0 then
        return io_error(where, "sending to", "timeout")
    end
    sock:settimeout(ms(left))
    local sent, err = sock:send(headers)
    if not sent then
        if reused and err ~= "timeout" then
            return nil, nil, true
        end
        return io_error(where, "sending to", err)
    end

    local res, second = http1.read_response(sock, {
        where = where, deadline = deadline, now = ngx.now,
        max_body = self.max_body, head = req.method == "HEAD",
    })
    if not res then
        -- a pooled connection the server closed meanwhile: try another one
        if reused and second.nothing then
            return nil, nil, true
        end
        return nil, second
    end
    return res, second
end

-- request{ method, url, headers, body, timeout }
--   -> { status, headers, body } | nil, { kind, message, curl_code }
function _M.request(self, req)
    local phase = ngx.get_phase()
    if not YIELDING_PHASES[phase] then
        phase_error(phase)
    end
    if type(req) ~= "table" then
        error("wecom.transport.ngx:request: req must be a table", 2)
    end
    local method, url = req.method, req.url
    if method ~= "GET" and method ~= "POST" and method ~= "PUT" and method ~= "DELETE"
        and method ~= "HEAD" then
        error("wecom.transport.ngx:request: unsupported method " .. tostring(method), 2)
    end
    if type(url) ~= "string" then
        error("wecom.transport.ngx:request: url must be a string", 2)
    end
    if req.body ~= nil and type(req.body) ~= "string" then
        error("wecom.transport.ngx:request: body must be a string", 2)
    end
    if req.headers then
        for k, v in pairs(req.headers) do
            if type(k) ~= "string" or type(v) ~= "string" or str_find(k, "[\r\n:]") or str_find(v, "[\r\n]") then
                error("wecom.transport.ngx:request: header names and values must be strings"
                    .. " without CR/LF", 2)
            end
        end
    end
    local host, port, target = split_url(url)
    if not host then
        return fail("transport", "unsupported URL (only https://host[:port]/path)", CURLE.URL_MALFORMAT)
    end
    -- an IPv6 address in brackets, for nginx and in messages, as in the URL
    local bracketed = str_find(host, ":", 1, true) and ("[" .. host .. "]") or host
    local where = bracketed .. ":" .. port
    local host_header = bracketed
    if port ~= 443 then
        host_header = host_header .. ":" .. port
    end
    -- no DNS server knows "localhost"; nginx's resolver does not read /etc/hosts
    local address = host == "localhost" and "127.0.0.1" or bracketed
    local pool = "wecom:" .. where

    -- one deadline for the whole request, like libcurl's total timeout:
    -- each socket operation gets at most what is left of it
    local timeout = req.timeout or self.timeout
    ngx.update_time()
    local deadline = ngx.now() + timeout

    for _ = 0, MAX_STALE_RETRIES do
        local left = deadline - ngx.now()
        if left <= 0 then
            return fail("timeout", "request to " .. where .. " timed out", CURLE.OPERATION_TIMEDOUT)
        end
        local sock = ngx.socket.tcp()
        -- connect and the TLS handshake: connect_timeout, within the deadline
        local connect_ms = ms(self.connect_timeout < left and self.connect_timeout or left)
        sock:settimeouts(connect_ms, ms(left), ms(left))
        local ok, err = sock:connect(address, port, { pool = pool })
        if not ok then
            return connect_error(where, err)
        end
        local reused = (sock:getreusedtimes() or 0) > 0
        if not reused then
            -- resty.core's sslhandshake raises (an assert) when a handshake
            -- that finished at once failed verification: that is a TLS
            -- failure too
            local hs_ok, session, herr = pcall(sock.sslhandshake, sock, tls_sessions[pool], host, true)
            if not hs_ok then
                sock:close()
                return tls_error(where, "certificate verification failed", host, port)
            end
            if session == nil and herr ~= nil then
                sock:close()
                return tls_error(where, herr, host, port)
            end
            -- nil without an error: no session ticket yet, nothing to resume
            if session ~= nil then
                tls_sessions[pool] = session
            end
        end

        -- -> res, keepalive | nil, err | nil, nil, true (stale pooled connection)
        local res, second, stale = exchange(self, sock, where, req, target, host_header, deadline, reused)
        if res then
            if second then
                sock:setkeepalive(KEEPALIVE_IDLE_MS)
            else
                sock:close()
            end
            return res
        end
        sock:close()
        if not stale then
            return nil, second
        end
    end
    return fail("transport", where .. " keeps closing pooled connections", CURLE.GOT_NOTHING)
end

function _M.close()
    -- connections belong to nginx's keepalive pool, shared by the worker
end

function mt.__tostring()
    return "wecom.transport.ngx"
end

return _M
