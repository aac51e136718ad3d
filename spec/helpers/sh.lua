-- Shell and file chores of the specs and their helpers.
--
--   local sh = require "helpers.sh"
--   sh.quote(s)            -- s as one single-quoted shell word
--   sh.run(cmd)            -- true when cmd exits 0 (os.execute differs between 5.1 and 5.2+)
--   sh.capture(cmd)        -- cmd's standard output
--   sh.read_file(path)     -- the file's bytes, nil when it cannot be opened
--   sh.write_file(path, s) -- raises when it cannot be written
--   sh.tmpdir(prefix)      -- a new directory /tmp/<prefix>.XXXXXX
--   sh.mode(path)          -- the permission bits in octal, as `stat -c %a` prints them ("600")

local _M = {}

function _M.quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function _M.run(cmd)
    local a, _, c = os.execute(cmd)
    if type(a) == "number" then
        return a == 0
    end
    return a == true and (c == nil or c == 0)
end

function _M.capture(cmd)
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("*a")
    p:close()
    return out
end

function _M.read_file(path)
    local f = io.open(path, "rb")
    if not f then
        return nil
    end
    local s = f:read("*a")
    f:close()
    return s
end

function _M.write_file(path, data)
    local f = assert(io.open(path, "wb"))
    f:write(data)
    f:close()
end

function _M.tmpdir(prefix)
    return (_M.capture("mktemp -d /tmp/" .. prefix .. ".XXXXXX"):gsub("%s+$", ""))
end

function _M.mode(path)
    return (_M.capture("stat -c %a " .. _M.quote(path)):gsub("%s+$", ""))
end

return _M
