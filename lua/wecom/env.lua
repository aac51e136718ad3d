-- wecom.env: where the SDK runs, decided once at load.
--
-- Inside nginx (lua-nginx-module or OpenResty) HTTP, Redis and sleeps must
-- go through cosockets and ngx.sleep, or they block every request of the
-- worker; everywhere else the C core does them.  Every module asks here
-- instead of looking at the `ngx` global itself.

local io_stderr = io.stderr
local rawget = rawget
local select = select
local tostring = tostring
local concat = table.concat

local core = require "wecom.core"

local ngx = rawget(_G, "ngx")

local _M = {}

-- in_nginx: true inside an nginx worker with cosockets
local in_nginx = ngx ~= nil and ngx.socket ~= nil and ngx.socket.tcp ~= nil
    and ngx.get_phase ~= nil
_M.in_nginx = in_nginx
_M.ngx = in_nginx and ngx or nil

-- Phases where cosockets, ngx.sleep and ngx.thread work (lua-nginx-module
-- docs, 0.10.23).  One table: four copies of it had drifted apart.
local YIELDING_PHASES = {
    rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}
_M.YIELDING_PHASES = YIELDING_PHASES

-- phase() -> the current nginx phase, or nil outside nginx
function _M.phase()
    return in_nginx and ngx.get_phase() or nil
end

-- can_yield() -> true when cosockets, ngx.sleep and light threads may be
-- used right now
function _M.can_yield()
    return in_nginx and YIELDING_PHASES[ngx.get_phase()] == true
end

-- sleep(seconds): ngx.sleep inside nginx (it raises, naming the phase, where
-- nginx cannot yield), a blocking sleep elsewhere and in nginx's init phase
function _M.sleep(seconds)
    if in_nginx then
        local phase = ngx.get_phase()
        if phase ~= "init" and phase ~= "init_worker" then
            return ngx.sleep(seconds)
        end
    end
    core.sleep(seconds)
end

local NGX_LEVELS = in_nginx and {
    err = ngx.ERR, warn = ngx.WARN, notice = ngx.NOTICE, info = ngx.INFO, debug = ngx.DEBUG,
} or nil

-- log(level, ...) : level "err" | "warn" | "notice" | "info" | "debug";
-- nginx's error log inside nginx, stderr elsewhere
function _M.log(level, ...)
    if in_nginx then
        return ngx.log(NGX_LEVELS[level] or ngx.WARN, ...)
    end
    local n = select("#", ...)
    local parts = { "[", level, "] " }
    for i = 1, n do
        parts[#parts + 1] = tostring((select(i, ...)))
    end
    parts[#parts + 1] = "\n"
    io_stderr:write(concat(parts))
end

return _M
