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
--     base_url with an IP address cannot pass verification; use a name.
-- Proxies are not supported (an error at construction says so).
--
-- Errors have the curl transport's shape: { kind = "transport" | "timeout"
-- | "tls", message, curl_code } with libcurl's code for the same failure, so
-- the client's retry policy treats both transports alike.  Messages name
-- host:port, never the path or query (an access_token lives there).

local error = error
local concat = table.concat
local math_floor = math.floor
local pairs = pairs
local pcall = pcall
local setmetatable = setmetatable
local str_find = string.find
local str_lower = string.lower
local str_match = string.match
local str_sub = string.sub
local tonumber = tonumber
local tostring = tostring
local type = type

local ngx = ngx

local _M = { name = "ngx" }

local mt = { __index = _M }

-- Phases where cosockets work (lua-nginx-module docs, 0.10.23).
local COSOCKET_PHASES = {
    rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}
_M.COSOCKET_PHASES = COSOCKET_PHASES

local DEFAULT_TIMEOUT = 5
local KEEPALIVE_IDLE_MS = 60000
local MAX_BODY = 32 * 1024 * 1024
local MAX_HEADER_LINES = 200
-- a reused keepalive connection the server has closed meanwhile is retried
-- on another one; a fresh connection is never retried here
local MAX_STALE_RETRIES = 2

-- libcurl's codes for the same failures
local CURLE_URL_MALFORMAT = 3
local CURLE_COULDNT_RESOLVE_HOST = 6
local CURLE_COULDNT_CONNECT = 7
local CURLE_WEIRD_SERVER_REPLY = 8
local CURLE_OPERATION_TIMEDOUT = 28
local CURLE_SSL_CONNECT_ERROR = 35
local CURLE_GOT_NOTHING = 52
local CURLE_SEND_ERROR = 55
local CURLE_RECV_ERROR = 56
local CURLE_PEER_FAILED_VERIFICATION = 60
local CURLE_FILESIZE_EXCEEDED = 63

-- TLS sessions per pool, per worker: new connections resume them
local tls_sessions = {}

local warned_ca_file = false

local function fail(kind, message, curl_code)
    return nil, { kind = kind, message = message, curl_code = curl_code }
end

-- new{ ca_file, timeout, connect_timeout, proxy, noproxy, user_agent } -> transport
function _M.new(opts)
    if type(opts) ~= "table" then
        error("wecom.transport.ngx.new: opts must be a table", 2)
    end
    if opts.proxy ~= nil then
        error("wecom: option 'proxy' is not supported inside nginx (the cosocket transport"
            .. " connects directly; route egress at the network level instead)", 4)
    end
    if opts.ca_file ~= nil and not warned_ca_file then
        warned_ca_file = true
        ngx.log(ngx.WARN, "wecom: option 'ca_file' is ignored inside nginx; the trusted CAs"
            .. " come from the lua_ssl_trusted_certificate directive")
    end
    local timeout = opts.timeout or DEFAULT_TIMEOUT
    if type(timeout) ~= "number" or timeout <= 0 then
        error("wecom.transport.ngx.new: timeout must be a positive number", 2)
    end
    local connect_timeout = opts.connect_timeout or timeout
    return setmetatable({
        timeout = timeout,
        connect_timeout = connect_timeout,
        user_agent = opts.user_agent or "wecom-lua",
        max_body = opts.max_body,
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

local function ms(seconds)
    local v = math_floor(seconds * 1000)
    return v < 1 and 1 or v
end

local function phase_error(phase)
    error("wecom: HTTP requests are not possible in the " .. tostring(phase) .. " phase"
        .. " (nginx disables cosockets there); make the call from a request handler"
        .. " (rewrite/access/content) or a timer: ngx.timer.at(0, function(premature) ... end)", 3)
end

local function connect_error(where, err)
    if err == "timeout" then
        return fail("timeout", "connect to " .. where .. " timed out", CURLE_OPERATION_TIMEDOUT)
    end
    if str_find(err, "no resolver defined", 1, true) then
        return fail("transport", "cannot resolve " .. where .. ": no resolver defined"
            .. " (add a `resolver` directive to nginx's http block)", CURLE_COULDNT_RESOLVE_HOST)
    end
    if str_find(err, "resolve", 1, true) or str_find(err, "not found", 1, true) then
        return fail("transport", "cannot resolve " .. where .. ": " .. err, CURLE_COULDNT_RESOLVE_HOST)
    end
    return fail("transport", "connect to " .. where .. " failed: " .. err, CURLE_COULDNT_CONNECT)
end

local function tls_error(where, err)
    if err == "timeout" then
        return fail("timeout", "TLS handshake with " .. where .. " timed out", CURLE_OPERATION_TIMEDOUT)
    end
    err = tostring(err)
    if str_find(err, "certificate", 1, true) or str_find(err, "verif", 1, true) then
        return fail("tls", "TLS handshake with " .. where .. " failed: " .. err
            .. " (inside nginx the trusted CAs come from lua_ssl_trusted_certificate)",
            CURLE_PEER_FAILED_VERIFICATION)
    end
    return fail("tls", "TLS handshake with " .. where .. " failed: " .. err, CURLE_SSL_CONNECT_ERROR)
end

local function io_error(where, what, err, got_something)
    if err == "timeout" then
        return fail("timeout", what .. " " .. where .. " timed out", CURLE_OPERATION_TIMEDOUT)
    end
    if what == "sending to" then
        return fail("transport", "sending to " .. where .. " failed: " .. tostring(err), CURLE_SEND_ERROR)
    end
    if not got_something and err == "closed" then
        return fail("transport", where .. " closed the connection without a response", CURLE_GOT_NOTHING)
    end
    return fail("transport", what .. " " .. where .. " failed: " .. tostring(err), CURLE_RECV_ERROR)
end

local function bad_reply(where, what)
    return fail("transport", "bad HTTP response from " .. where .. ": " .. what, CURLE_WEIRD_SERVER_REPLY)
end

-- A deadline for the whole exchange, like libcurl's total timeout: each
-- socket operation gets what is left of it.
local function time_left(deadline)
    return deadline - ngx.now()
end

local function set_read_timeout(sock, deadline)
    local left = time_left(deadline)
    if left <= 0 then
        return false
    end
    sock:settimeout(ms(left))
    return true
end

local function read_headers(sock, where, deadline)
    local headers = {}
    for _ = 1, MAX_HEADER_LINES do
        if not set_read_timeout(sock, deadline) then
            return io_error(where, "reading from", "timeout", true)
        end
        local line, err = sock:receive("*l")
        if not line then
            return io_error(where, "reading from", err, true)
        end
        if line == "" then
            return headers
        end
        local name, value = str_match(line, "^([^:%s]+)%s*:%s*(.-)%s*$")
        if not name then
            return bad_reply(where, "malformed header line")
        end
        name = str_lower(name)
        local old = headers[name]
        headers[name] = old and (old .. ", " .. value) or value
    end
    return bad_reply(where, "too many header lines")
end

local function read_chunked(sock, where, deadline, max_body)
    local parts, total = {}, 0
    while true do
        if not set_read_timeout(sock, deadline) then
            return io_error(where, "reading from", "timeout", true)
        end
        local line, err = sock:receive("*l")
        if not line then
            return io_error(where, "reading from", err, true)
        end
        local size = tonumber(str_match(line, "^%s*(%x+)"), 16)
        if not size then
            return bad_reply(where, "malformed chunk size")
        end
        if size == 0 then
            -- trailers, up to the empty line
            local _, terr = read_headers(sock, where, deadline)
            if terr then
                return nil, terr
            end
            return concat(parts)
        end
        total = total + size
        if total > max_body then
            return fail("transport", "response body from " .. where .. " larger than "
                .. max_body .. " bytes", CURLE_FILESIZE_EXCEEDED)
        end
        local data
        data, err = sock:receive(size)
        if not data then
            return io_error(where, "reading from", err, true)
        end
        parts[#parts + 1] = data
        local crlf
        crlf, err = sock:receive("*l")
        if crlf ~= "" then
            if crlf == nil then
                return io_error(where, "reading from", err, true)
            end
            return bad_reply(where, "malformed chunk")
        end
    end
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

    local left = time_left(deadline)
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

    if not set_read_timeout(sock, deadline) then
        return io_error(where, "reading from", "timeout")
    end
    local status_line
    status_line, err = sock:receive("*l")
    if not status_line then
        if reused and err ~= "timeout" then
            return nil, nil, true
        end
        return io_error(where, "reading from", err, false)
    end
    local version, status = str_match(status_line, "^HTTP/(%d%.%d) (%d%d%d)")
    if not version then
        return bad_reply(where, "malformed status line")
    end
    status = tonumber(status)

    local res_headers, herr = read_headers(sock, where, deadline)
    if not res_headers then
        return nil, herr
    end

    local connection = str_lower(res_headers["connection"] or "")
    local keepalive
    if version == "1.0" then
        keepalive = str_find(connection, "keep-alive", 1, true) ~= nil
    else
        keepalive = not str_find(connection, "close", 1, true)
    end

    local res_body
    local te = res_headers["transfer-encoding"]
    if req.method == "HEAD" or status == 204 or status == 304 or (status >= 100 and status < 200) then
        res_body = ""
    elseif te and str_find(str_lower(te), "chunked", 1, true) then
        local berr
        res_body, berr = read_chunked(sock, where, deadline, self.max_body or MAX_BODY)
        if not res_body then
            return nil, berr
        end
    elseif res_headers["content-length"] then
        local length = tonumber(res_headers["content-length"])
        if not length or length < 0 or length ~= math_floor(length) then
            return bad_reply(where, "malformed Content-Length")
        end
        if length > (self.max_body or MAX_BODY) then
            return fail("transport", "response body from " .. where .. " larger than "
                .. (self.max_body or MAX_BODY) .. " bytes", CURLE_FILESIZE_EXCEEDED)
        end
        if length == 0 then
            res_body = ""
        else
            if not set_read_timeout(sock, deadline) then
                return io_error(where, "reading from", "timeout", true)
            end
            res_body, err = sock:receive(length)
            if not res_body then
                return io_error(where, "reading from", err, true)
            end
        end
    else
        -- no length: the body ends when the server closes the connection
        keepalive = false
        if not set_read_timeout(sock, deadline) then
            return io_error(where, "reading from", "timeout", true)
        end
        local parts, total = {}, 0
        while true do
            local data, rerr = sock:receiveany(65536)
            if not data then
                if rerr == "closed" then
                    break
                end
                return io_error(where, "reading from", rerr, true)
            end
            total = total + #data
            if total > (self.max_body or MAX_BODY) then
                return fail("transport", "response body from " .. where .. " larger than "
                    .. (self.max_body or MAX_BODY) .. " bytes", CURLE_FILESIZE_EXCEEDED)
            end
            parts[#parts + 1] = data
            if not set_read_timeout(sock, deadline) then
                return io_error(where, "reading from", "timeout", true)
            end
        end
        res_body = concat(parts)
    end

    return { status = status, headers = res_headers, body = res_body }, keepalive
end

-- request{ method, url, headers, body, timeout }
--   -> { status, headers, body } | nil, { kind, message, curl_code }
function _M.request(self, req)
    local phase = ngx.get_phase()
    if not COSOCKET_PHASES[phase] then
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
        return fail("transport", "unsupported URL (only https://host[:port]/path)", CURLE_URL_MALFORMAT)
    end
    local where = host .. ":" .. port
    local host_header = str_find(host, ":", 1, true) and ("[" .. host .. "]") or host
    if port ~= 443 then
        host_header = host_header .. ":" .. port
    end
    -- no DNS server knows "localhost"; nginx's resolver does not read /etc/hosts
    local address = host == "localhost" and "127.0.0.1" or host
    local pool = "wecom:" .. where

    local timeout = req.timeout or self.timeout
    ngx.update_time()
    local deadline = ngx.now() + timeout

    for _ = 0, MAX_STALE_RETRIES do
        local sock = ngx.socket.tcp()
        sock:settimeouts(ms(self.connect_timeout < timeout and self.connect_timeout or timeout),
            ms(timeout), ms(timeout))
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
                return tls_error(where, "certificate verification failed")
            end
            if session == nil and herr ~= nil then
                sock:close()
                return tls_error(where, herr)
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
    return fail("transport", where .. " keeps closing pooled connections", CURLE_GOT_NOTHING)
end

function _M.close()
    -- connections belong to nginx's keepalive pool, shared by the worker
end

function mt.__tostring()
    return "wecom.transport.ngx"
end

return _M
