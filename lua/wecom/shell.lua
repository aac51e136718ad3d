-- wecom.shell: the few shell chores of the CLI and the test kit, written
-- once (bin/wecom-emulator keeps its own: it runs before any module path is
-- set).
--
--   quote(s)     -> s as one single-quoted shell word
--   run(cmd)     -> true when cmd exits 0 (os.execute answers differently
--                   on 5.1/LuaJIT and 5.2+)
--   capture(cmd) -> cmd's standard output ("" when it cannot be started)

local io_popen = io.popen
local os_execute = os.execute
local tostring = tostring
local type = type

local _M = {}

function _M.quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function _M.run(cmd)
    local a, _, c = os_execute(cmd)
    if type(a) == "number" then
        return a == 0
    end
    return a == true and (c == nil or c == 0)
end

function _M.capture(cmd)
    local p = io_popen(cmd, "r")
    if not p then
        return ""
    end
    local out = p:read("*a") or ""
    p:close()
    return out
end

return _M
