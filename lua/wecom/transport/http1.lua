-- wecom.transport.http1: reads one HTTP/1.1 response from a cosocket,
-- bounded in bytes and in seconds.  The cosocket transport and the
-- emulator's push both read their responses here.
--
-- Why not sock:receive("*l") and sock:receive(n): a line read has no length
-- limit (an endless header line grows the worker until it dies), and a
-- cosocket read timeout restarts with every byte that arrives (a server
-- dripping one byte a second keeps a read alive for ever).  So everything
-- is read with receiveany() into a buffer of our own: each read gets what
-- is left of one deadline for the whole response, and lines are cut at a
-- byte cap.
--
-- Limits:
--   * the header block (status line, header lines, chunked trailers and any
--     1xx interim responses): max_header bytes, 256 KiB by default (what the
--     libcurl transport allows), and at most 200 header lines;
--   * a chunk-size line: 1 KiB;
--   * the body: max_body bytes, however it is framed;
--   * time: everything ends by `deadline`.
--
-- Errors have the transports' shape, { kind = "transport" | "timeout",
-- message, curl_code } with libcurl's code for the same failure, plus
-- `nothing = true` when the peer closed (or reset) before a byte came back
-- (a pooled connection the server had closed: the caller may try another).
-- Messages name `where` (host:port), never the request target.
--
-- This module uses nothing but the socket and the clock it is handed, so
-- the emulator can use it without wecom.core.

local concat = table.concat
local math_floor = math.floor
local pairs = pairs
local setmetatable = setmetatable
local str_byte = string.byte
local str_find = string.find
local str_lower = string.lower
local str_match = string.match
local str_sub = string.sub
local tonumber = tonumber
local tostring = tostring

local _M = {}

_M.MAX_HEADER = 256 * 1024
_M.MAX_HEADER_LINES = 200
_M.MAX_CHUNK_LINE = 1024

-- receiveany's largest read; a read never waits for more than what came
local BLOCK = 65536

-- libcurl's codes for the same failures
local CURLE = {
    URL_MALFORMAT = 3,
    COULDNT_RESOLVE_HOST = 6,
    COULDNT_CONNECT = 7,
    WEIRD_SERVER_REPLY = 8,
    OPERATION_TIMEDOUT = 28,
    SSL_CONNECT_ERROR = 35,
    GOT_NOTHING = 52,
    SEND_ERROR = 55,
    RECV_ERROR = 56,
    PEER_FAILED_VERIFICATION = 60,
    FILESIZE_EXCEEDED = 63,
}
_M.CURLE = CURLE

local function fail(kind, message, curl_code, nothing)
    return nil, { kind = kind, message = message, curl_code = curl_code, nothing = nothing }
end
_M.fail = fail

-- ms(seconds) -> whole milliseconds, at least 1 (0 would mean "no timeout")
local function ms(seconds)
    local v = math_floor(seconds * 1000)
    return v < 1 and 1 or v
end
_M.ms = ms

-- io_error(where, what, err [, got_something]) for a failed socket operation;
-- what: "sending to" | "reading from"
local function io_error(where, what, err, got_something)
    if err == "timeout" then
        return fail("timeout", what .. " " .. where .. " timed out", CURLE.OPERATION_TIMEDOUT)
    end
    if what == "sending to" then
        return fail("transport", "sending to " .. where .. " failed: " .. tostring(err), CURLE.SEND_ERROR)
    end
    if not got_something then
        if err == "closed" then
            return fail("transport", where .. " closed the connection without a response",
                CURLE.GOT_NOTHING, true)
        end
        return fail("transport", "reading from " .. where .. " failed: " .. tostring(err),
            CURLE.RECV_ERROR, true)
    end
    return fail("transport", "reading from " .. where .. " failed: " .. tostring(err), CURLE.RECV_ERROR)
end
_M.io_error = io_error

local function bad_reply(where, what)
    return fail("transport", "bad HTTP response from " .. where .. ": " .. what, CURLE.WEIRD_SERVER_REPLY)
end

local function too_large(where, what, limit)
    return fail("transport", "response " .. what .. " from " .. where .. " larger than "
        .. limit .. " bytes", CURLE.FILESIZE_EXCEEDED)
end

---------------------------------------------------------------------------
-- A buffered reader with one deadline
---------------------------------------------------------------------------

local reader_mt = {}
reader_mt.__index = reader_mt

-- Reads what the socket has (at most `max` bytes), waiting at most until the
-- deadline, and appends it to the buffer.  -> true | nil, err, socket's err
function reader_mt:fill(max)
    local left = self.deadline - self.now()
    if left <= 0 then
        return io_error(self.where, "reading from", "timeout")
    end
    local sock = self.sock
    sock:settimeout(ms(left))
    local data, err = sock:receiveany(max or BLOCK)
    if not data then
        local _, e = io_error(self.where, "reading from", err, self.received > 0)
        return nil, e, err
    end
    self.received = self.received + #data
    local pos = self.pos
    if pos > #self.buf then
        self.buf = data
    elseif pos > 1 then
        self.buf = str_sub(self.buf, pos) .. data
    else
        self.buf = self.buf .. data
    end
    self.pos = 1
    return true
end

-- line(cap) -> the next line without its line end, and the bytes it took
-- with the line end | false once it passes cap bytes | nil, err
function reader_mt:line(cap)
    local scanned = 0
    while true do
        local buf, pos = self.buf, self.pos
        local nl = str_find(buf, "\n", pos + scanned, true)
        if nl then
            local taken = nl - pos + 1
            if taken > cap then
                return false
            end
            local last = nl - 1
            if last >= pos and str_byte(buf, last) == 13 then
                last = last - 1
            end
            self.pos = nl + 1
            return str_sub(buf, pos, last), taken
        end
        scanned = #buf - pos + 1
        if scanned > cap then
            return false
        end
        local ok, err = self:fill()
        if not ok then
            return nil, err
        end
    end
end

-- bytes(n) -> exactly n bytes | nil, err
function reader_mt:bytes(n)
    local buf, pos = self.buf, self.pos
    local have = #buf - pos + 1
    if have >= n then
        self.pos = pos + n
        return str_sub(buf, pos, pos + n - 1)
    end
    local parts = { str_sub(buf, pos) }
    local need = n - have
    self.buf, self.pos = "", 1
    while need > 0 do
        -- at most what is still needed: nothing is read past the body
        local ok, err = self:fill(need < BLOCK and need or BLOCK)
        if not ok then
            return nil, err
        end
        parts[#parts + 1] = self.buf
        need = need - #self.buf
        self.buf = ""
    end
    return concat(parts)
end

-- rest(max) -> everything up to the close | nil, err
function reader_mt:rest(max)
    local parts = { str_sub(self.buf, self.pos) }
    local total = #parts[1]
    self.buf, self.pos = "", 1
    if total > max then
        return too_large(self.where, "body", max)
    end
    while true do
        local ok, err, sock_err = self:fill()
        if not ok then
            if sock_err == "closed" then
                return concat(parts)
            end
            return nil, err
        end
        total = total + #self.buf
        if total > max then
            return too_large(self.where, "body", max)
        end
        parts[#parts + 1] = self.buf
        self.buf = ""
    end
end

---------------------------------------------------------------------------
-- The response
---------------------------------------------------------------------------

local function trim(s, from)
    local first = str_find(s, "[^ \t]", from)
    if not first then
        return ""
    end
    local last = #s
    local b = str_byte(s, last)
    while b == 32 or b == 9 do
        last = last - 1
        b = str_byte(s, last)
    end
    return str_sub(s, first, last)
end

-- header lines up to the empty one -> headers, or nil, err.  Repeated
-- names are joined with ", " (collected first: joining as they come would
-- copy the value over and over).
local function read_headers(r)
    local headers, repeated = {}, nil
    for _ = 1, _M.MAX_HEADER_LINES do
        local line, taken = r:line(r.header_left)
        if not line then
            if line == false then
                return too_large(r.where, "header", r.max_header)
            end
            return nil, taken
        end
        r.header_left = r.header_left - taken
        if line == "" then
            if repeated then
                for name, list in pairs(repeated) do
                    headers[name] = concat(list, ", ")
                end
            end
            return headers
        end
        local colon = str_find(line, ":", 1, true)
        local name = colon and str_sub(line, 1, colon - 1)
        -- a token: no blanks (which also refuses obsolete line folding)
        if not name or not str_find(name, "^[!#$%%&'*+%-.^_`|~%w]+$") then
            return bad_reply(r.where, "malformed header line")
        end
        name = str_lower(name)
        local value = trim(line, colon + 1)
        local old = headers[name]
        if old == nil then
            headers[name] = value
        else
            repeated = repeated or {}
            local list = repeated[name]
            if not list then
                list = { old }
                repeated[name] = list
            end
            list[#list + 1] = value
        end
    end
    return bad_reply(r.where, "more than " .. _M.MAX_HEADER_LINES .. " header lines")
end

local function read_chunked(r, max_body)
    local parts, total = {}, 0
    while true do
        local line, err = r:line(_M.MAX_CHUNK_LINE)
        if not line then
            if line == false then
                return bad_reply(r.where, "chunk size line longer than " .. _M.MAX_CHUNK_LINE .. " bytes")
            end
            return nil, err
        end
        -- hex digits, then optional extensions (ignored); 15 digits at most
        -- keep the number exact
        local hex = str_match(line, "^[ \t]*(%x+)[ \t]*$") or str_match(line, "^[ \t]*(%x+)[ \t]*;")
        if not hex then
            return bad_reply(r.where, "malformed chunk size")
        end
        hex = str_match(hex, "^0*(.*)$")
        if #hex > 15 then
            return too_large(r.where, "body", max_body)
        end
        local size = hex == "" and 0 or tonumber(hex, 16)
        if size == 0 then
            -- trailers (discarded), up to the empty line, within the
            -- header block's bytes
            local _, terr = read_headers(r)
            if terr then
                return nil, terr
            end
            return concat(parts)
        end
        total = total + size
        if total > max_body then
            return too_large(r.where, "body", max_body)
        end
        local data
        data, err = r:bytes(size)
        if not data then
            return nil, err
        end
        parts[#parts + 1] = data
        local crlf
        crlf, err = r:line(2)
        if crlf ~= "" then
            if crlf == nil then
                return nil, err
            end
            return bad_reply(r.where, "malformed chunk")
        end
    end
end

-- read_response(sock, opts) -> res, keepalive | nil, err
--   opts.where     host:port, for messages
--   opts.deadline  when the whole response must be in, on opts.now's clock
--   opts.now       the clock, in seconds (ngx.now)
--   opts.max_body  bytes
--   opts.max_header bytes (default 256 KiB)
--   opts.head      true for a HEAD request (no body follows)
--   res = { status, headers = { ["lower-case name"] = "v1, v2" }, body }
--   keepalive: whether the connection can carry another request
function _M.read_response(sock, opts)
    local max_header = opts.max_header or _M.MAX_HEADER
    local r = setmetatable({
        sock = sock, buf = "", pos = 1, received = 0,
        where = opts.where, deadline = opts.deadline, now = opts.now,
        header_left = max_header, max_header = max_header,
    }, reader_mt)

    local version, status, headers
    repeat
        local line, taken = r:line(r.header_left)
        if not line then
            if line == false then
                return too_large(r.where, "header", max_header)
            end
            return nil, taken
        end
        r.header_left = r.header_left - taken
        local major, minor, code = str_match(line, "^HTTP/(%d)%.(%d) (%d%d%d)")
        if not major then
            return bad_reply(r.where, "malformed status line")
        end
        version, status = major .. "." .. minor, tonumber(code)
        local err
        headers, err = read_headers(r)
        if not headers then
            return nil, err
        end
    -- interim responses (100 Continue, 103 Early Hints): the real one follows
    until status >= 200 or status == 101

    local connection = str_lower(headers["connection"] or "")
    local keepalive
    if version == "1.0" then
        keepalive = str_find(connection, "keep-alive", 1, true) ~= nil
    else
        keepalive = not str_find(connection, "close", 1, true)
    end

    local max_body = opts.max_body
    local body, err
    local te = headers["transfer-encoding"]
    local cl = headers["content-length"]
    if opts.head or status == 204 or status == 304 or status == 101 then
        body = ""
        keepalive = keepalive and status ~= 101
    elseif te and str_find(str_lower(te), "chunked", 1, true) then
        body, err = read_chunked(r, max_body)
    elseif cl then
        local digits = str_match(cl, "^(%d+)$")
        if not digits or #digits > 15 then
            return bad_reply(r.where, "malformed Content-Length")
        end
        local length = tonumber(digits)
        if length > max_body then
            return too_large(r.where, "body", max_body)
        end
        body, err = r:bytes(length)
    else
        -- no length: the body ends when the server closes the connection
        keepalive = false
        body, err = r:rest(max_body)
    end
    if not body then
        return nil, err
    end
    -- bytes past the response: the connection is out of step, drop it
    if r.pos <= #r.buf then
        keepalive = false
    end
    return { status = status, headers = headers, body = body }, keepalive
end

return _M
