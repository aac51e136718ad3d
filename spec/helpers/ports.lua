-- Listening ports for the servers specs start (emulator, nginx, Redis).
--
-- They come from below the kernel's ephemeral range: a port in it may be
-- taken at any moment by an outgoing connection, and the server would then
-- fail to bind (or nginx log bind() failures at [emerg] while it retries).

local _M = {}

local function random_int(lo, hi)
    local f = assert(io.open("/dev/urandom", "rb"))
    local b = f:read(4)
    f:close()
    local n = 0
    for i = 1, 4 do
        n = n * 256 + b:byte(i)
    end
    return lo + n % (hi - lo + 1)
end
_M.random_int = random_int

function _M.range()
    local low = 32768
    local f = io.open("/proc/sys/net/ipv4/ip_local_port_range", "r")
    if f then
        low = tonumber((f:read("*l") or ""):match("^%s*(%d+)")) or low
        f:close()
    end
    if low > 12000 then
        return 10000, low - 2
    end
    return 20000, 45000
end

-- pick() -> a random port to try (the caller retries on a bind failure)
function _M.pick()
    return random_int(_M.range())
end

return _M
