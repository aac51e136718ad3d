-- Runs inside the hostile nginx of spec/helpers/hostile.lua: HTTPS answers
-- that break the rules on purpose, written raw on the request's socket.
--
--   /ok                      a well-formed answer ("ok")
--   /endless_header?limit=N  a header line that never ends (N bytes at most,
--                            so a client without a cap cannot take the
--                            machine down with it)
--   /endless_status?limit=N  a status line that never ends
--   /many_headers?limit=N    4000-byte header lines, without end
--   /endless_chunk?limit=N   a chunk-size line that never ends
--   /endless_trailer?limit=N a trailer line that never ends
--   /drip_header?n=&every=   a header line, one byte every `every` seconds
--   /drip_body?n=&every=     a Content-Length body, dripped the same way
--   /drip_chunked?n=&every=  one-byte chunks, dripped
--   /drip_close?n=&every=    a body that ends at close, dripped
--
-- Each answer records in the shared dict `hostile` how many bytes it managed
-- to send (the client hanging up stops it), read back at /sent/<name> on the
-- plain-HTTP port.  peak_rss() is the calling process's peak resident
-- memory, for the specs on either side.

-- luacheck: globals ngx
local ngx = ngx

local _M = {}

-- the calling process's peak resident memory, in bytes (Linux)
function _M.peak_rss()
    local f = assert(io.open("/proc/self/status", "r"))
    local s = f:read("*a")
    f:close()
    return tonumber(s:match("VmHWM:%s*(%d+) kB")) * 1024
end

local function record(name, sent, done)
    ngx.shared.hostile:set(name, sent)
    if done then
        ngx.shared.hostile:set(name .. ":done", true)
    end
end

local function arg(name, default)
    return tonumber(ngx.var["arg_" .. name]) or default
end

-- sends head, then `piece` over and over until `limit` bytes went out or
-- the client hangs up
local function endless(name, head, piece)
    local sock = assert(ngx.req.socket(true))
    local limit = arg("limit", 64 * 1024 * 1024)
    local sent = 0
    ngx.shared.hostile:delete(name .. ":done")
    local ok = sock:send(head)
    if ok then
        sent = #head
        record(name, sent)
        while sent < limit do
            if not sock:send(piece) then
                break
            end
            sent = sent + #piece
            record(name, sent)
        end
    end
    record(name, sent, true)
    return ngx.exit(ngx.OK)
end

local function drip(name, head, byte, tail)
    local sock = assert(ngx.req.socket(true))
    local n, every = arg("n", 40), arg("every", 0.5)
    local sent = 0
    ngx.shared.hostile:delete(name .. ":done")
    if sock:send(head) then
        sent = #head
        for _ = 1, n do
            ngx.sleep(every)
            if not sock:send(byte) then
                break
            end
            sent = sent + #byte
            record(name, sent)
        end
        if tail then
            sock:send(tail)
        end
    end
    record(name, sent, true)
    return ngx.exit(ngx.OK)
end

local A64K = string.rep("a", 65536)

local answers = {}

function answers.ok()
    ngx.header["Content-Length"] = 2
    ngx.print("ok")
end

function answers.endless_header()
    return endless("endless_header", "HTTP/1.1 200 OK\r\nX-Endless: ", A64K)
end

function answers.endless_status()
    return endless("endless_status", "HTTP/1.1 200 ", A64K)
end

function answers.many_headers()
    return endless("many_headers", "HTTP/1.1 200 OK\r\n", "X-Pad: " .. string.rep("b", 3991) .. "\r\n")
end

function answers.endless_chunk()
    return endless("endless_chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        string.rep("0", 65536))
end

function answers.endless_trailer()
    return endless("endless_trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "2\r\nok\r\n0\r\nX-Trailer: ", A64K)
end

function answers.drip_header()
    return drip("drip_header", "HTTP/1.1 200 OK\r\nX-Drip: ", "d", "\r\nContent-Length: 2\r\n\r\nok")
end

function answers.drip_body()
    local n = arg("n", 40)
    return drip("drip_body", "HTTP/1.1 200 OK\r\nContent-Length: " .. n .. "\r\n\r\n", "d")
end

function answers.drip_chunked()
    return drip("drip_chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\nd\r\n",
        "0\r\n\r\n")
end

function answers.drip_close()
    return drip("drip_close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", "d")
end

function _M.serve()
    -- the first path segment picks the answer (a client's base_url can
    -- carry it in front of any API path)
    local name = ngx.var.uri:match("^/([%w_]+)")
    local fn = name and answers[name]
    if not fn then
        return ngx.exit(404)
    end
    return fn()
end

-- GET /sent/<name> (plain HTTP) -> bytes the last <name> answer sent, once
-- it is over (-1 when it is still sending after 10 s)
function _M.sent()
    local name = ngx.var.uri:match("^/sent/([%w_]+)$") or ""
    local dict = ngx.shared.hostile
    for _ = 1, 1000 do
        if dict:get(name .. ":done") then
            ngx.say(tostring(dict:get(name)))
            return
        end
        ngx.sleep(0.01)
    end
    ngx.say("-1")
end

-- GET /reset (plain HTTP): forget what was sent
function _M.reset()
    ngx.shared.hostile:flush_all()
    ngx.say("ok")
end

return _M
