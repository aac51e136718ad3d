-- Sequential HTTPS calls from Lua through wecom.core.http_session; driven
-- by bench/http.sh, which compares them with bench/http_loop.c.
--
--   http_bench.lua url <base_url> <ca_file>          -> prints an API URL with a token
--   http_bench.lua <mode> <url> <ca_file> <calls>    -> prints calls/s
--
-- modes: keepalive    one session, so one kept-alive connection
--        new_session  a new session per call: TCP + full TLS handshake each time
--        no_reuse     one session with reuse = false: new TCP connection per
--                     call, TLS session resumed from the session's cache
local core = require "wecom.core"
local cjson = require "cjson"

local mode, a, b, c = ...

local function get(session, url)
    local res, err = session:request{ url = url }
    if not res then
        error("request failed: " .. err)
    end
    if res.status ~= 200 or #res.body == 0 then
        error("HTTP " .. res.status)
    end
    return res
end

if mode == "url" then
    local base, ca_file = a, b
    local s = core.http_session{ ca_file = ca_file }
    local fx = cjson.decode(get(s, base .. "/__emulator/fixture").body)
    local app = fx.upstream.apps[1]
    local data = cjson.decode(get(s, ("%s/cgi-bin/gettoken?corpid=%s&corpsecret=%s")
        :format(base, fx.upstream.corpid, app.secret)).body)
    assert(data.errcode == 0, "gettoken failed")
    local url = ("%s/cgi-bin/agent/get?access_token=%s&agentid=%d"):format(base, data.access_token, app.agentid)
    local check = cjson.decode(get(s, url).body)
    assert(check.errcode == 0, "agent/get failed: " .. tostring(check.errmsg))
    s:close()
    io.write(url, "\n")
    return
end

local url, ca_file, calls = a, b, tonumber(c)
assert(url and ca_file and calls, "usage: http_bench.lua <mode> <url> <ca_file> <calls>")

local started
if mode == "keepalive" or mode == "no_reuse" then
    local s = core.http_session{ ca_file = ca_file, reuse = mode == "keepalive" }
    started = core.monotonic()
    for _ = 1, calls do
        get(s, url)
    end
    s:close()
elseif mode == "new_session" then
    started = core.monotonic()
    for _ = 1, calls do
        local s = core.http_session{ ca_file = ca_file }
        get(s, url)
        s:close()
    end
else
    error("unknown mode " .. tostring(mode))
end
io.write(("%.1f\n"):format(calls / (core.monotonic() - started)))
