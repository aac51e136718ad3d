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
local select = select
local tostring = tostring

local ngx = ngx

local _M = {}

-- Phases where ngx.thread.spawn works (lua-nginx-module docs).
local THREAD_PHASES = {
    rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

-- available() -> true when the calling code may spawn light threads
function _M.available()
    return ngx ~= nil and ngx.thread ~= nil and THREAD_PHASES[ngx.get_phase()] == true
end

local function result_of(ok, ...)
    if not ok then
        return { ok = false, err = (...) }
    end
    local first, second = ...
    if first == nil and second ~= nil then
        return { ok = false, err = second }
    end
    local n = select("#", ...)
    local result = { ok = true, value = first, n = n, ... }
    return result
end

-- run(tasks, concurrency) -> results (tasks already checked by wecom.parallel)
function _M.run(tasks, concurrency)
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

-- sleep(seconds): ngx.sleep, which yields to nginx.  In the init phase
-- (the master, before any request) nothing can yield; blocking is harmless
-- there, so the caller's blocking sleep is used (returns false).  In other
-- phases that cannot yield ngx.sleep raises an error naming the context.
function _M.sleep(seconds)
    if ngx.get_phase() == "init" then
        return false
    end
    ngx.sleep(seconds)
    return true
end

return _M
