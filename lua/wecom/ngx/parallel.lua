-- wecom.ngx.parallel: wecom.parallel inside nginx, over ngx.thread.
--
-- Under nginx a task's HTTP goes over cosockets, which yield to nginx's
-- event loop by themselves; running each task as a light thread is all the
-- concurrency needed.  `concurrency` light threads each take the next task
-- until none is left, then the caller waits for all of them.  Results have
-- the shape of wecom.parallel's (see lua/wecom/parallel.lua):
--   { ok = true, value = v1, n = n, v1, ..., vn } | { ok = false, err = err }

local error = error
local pcall = pcall
local tostring = tostring

local env = require "wecom.env"

local ngx = env.ngx

local _M = {}

-- available() -> true when the calling code may spawn light threads
_M.available = env.can_yield

-- run(tasks, concurrency, result_of) -> results (tasks already checked by
-- wecom.parallel; result_of(pcall(task)) -> its result, wecom.parallel's
-- task_result, which cannot be required from here: it requires this module)
function _M.run(tasks, concurrency, result_of)
    local count = #tasks
    local results = {}
    if count == 0 then
        return results
    end
    local next_index = 1
    local function worker()
        while next_index <= count do
            local i = next_index
            next_index = i + 1
            results[i] = result_of(pcall(tasks[i]))
        end
    end
    local threads = {}
    local spawn = ngx.thread.spawn
    for t = 1, concurrency < count and concurrency or count do
        local thread, err = spawn(worker)
        if not thread then
            error("wecom.parallel: ngx.thread.spawn failed: " .. tostring(err), 0)
        end
        threads[t] = thread
    end
    local wait = ngx.thread.wait
    for t = 1, #threads do
        local ok, err = wait(threads[t])
        if not ok then
            -- worker() catches what tasks raise, so this is a bug here
            error("wecom.parallel: internal error: " .. tostring(err), 0)
        end
    end
    return results
end

return _M
