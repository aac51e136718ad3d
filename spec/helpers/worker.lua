-- What the processes of a fleet share (fleet_worker.lua, suite_worker.lua):
-- the store named on their command line, the start line, the tally they
-- print at the end.
--
--   local worker = require "helpers.worker"
--   local store = worker.store(kind, store_arg, password)  -- "file" | "redis"
--   worker.ready_then_wait(start_file)   -- prints "ready", waits for the file
--   local t = worker.tally(); t.add(ok, err); io.write(t.line())
--     -> "ok=<n> failed=<n>[ err=<first error>]\n"

local wecom = require "wecom"
local core = require "wecom.core"

local _M = {}

-- store(kind, store_arg, password) -> a file store in directory store_arg,
-- or a Redis store on port store_arg ("" password: none)
function _M.store(kind, store_arg, password)
    if kind == "file" then
        return wecom.store.file(store_arg)
    end
    return wecom.store.redis { port = tonumber(store_arg), password = password ~= "" and password or nil }
end

-- all the fleet's processes start their work at the same moment: when the
-- spec creates start_file
function _M.ready_then_wait(start_file)
    io.write("ready\n")
    io.flush()
    while true do
        local f = io.open(start_file)
        if f then
            f:close()
            return
        end
        core.sleep(0.001)
    end
end

function _M.tally()
    local t = { ok = 0, failed = 0 }
    function t.add(ok, err)
        if ok then
            t.ok = t.ok + 1
        else
            t.failed = t.failed + 1
            t.first_err = t.first_err or tostring(err)
        end
    end
    function t.line()
        return ("ok=%d failed=%d%s\n"):format(t.ok, t.failed, t.first_err and (" err=" .. t.first_err) or "")
    end
    return t
end

return _M
