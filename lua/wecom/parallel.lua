-- wecom.parallel: run functions as coroutines over one event loop.
--
-- Tasks run on worker coroutines (at most `concurrency` of them, each
-- taking the next task when its last one is done).  When a task makes an
-- HTTP request through the curl transport, the request is submitted to the
-- session's multi interface and the worker yields; the loop polls the
-- sessions and resumes each worker with its response.  Sleeps (retry backoff, waiting for a token lock) yield
-- to the loop as well, so one slow task never blocks the others.
--
-- Results, one per task and in task order:
--   { ok = true, value = v1, n = n, v1, v2, ..., vn }  -- what the task returned
--   { ok = false, err = err }                           -- it raised err, or
--                                                        -- returned nil, err
--
-- A parallel() call made from inside a task joins the running loop (its
-- tasks get their own concurrency bound; the caller waits for them).

local coroutine = coroutine
local co_create = coroutine.create
local co_resume = coroutine.resume
local co_running = coroutine.running
local co_status = coroutine.status
local co_yield = coroutine.yield
local error = error
local math_floor = math.floor
local math_huge = math.huge
local math_min = math.min
local next = next
local pairs = pairs
local pcall = pcall
local select = select
local setmetatable = setmetatable
local table_remove = table.remove
local tostring = tostring
local type = type

local core = require "wecom.core"
local env = require "wecom.env"

-- Inside nginx tasks are light threads and sleeps yield to nginx
-- (wecom.ngx.parallel, wecom.env.sleep); this loop is for everywhere else.
local ngx_parallel = env.in_nginx and require("wecom.ngx.parallel") or nil

local _M = {}

-- coroutine -> scheduler, for the coroutines that are tasks of a running
-- loop.  Weak keys: a finished task must not be kept alive by this table.
local task_sched = setmetatable({}, { __mode = "k" })

-- The value a task yields to ask the loop for something; anything else a
-- task yields (it should not) just puts it back at the end of the queue.
local WAIT = {}

local DEFAULT_CONCURRENCY = 16
-- When several sessions have requests in flight, each one is polled briefly
-- in turn so a reply on any of them is picked up quickly.
local MULTI_SESSION_SLICE = 0.005

local function now()
    return core.monotonic()
end

local sched_mt = {}
sched_mt.__index = sched_mt

local function new_scheduler()
    return setmetatable({
        -- queue of coroutines to resume, with up to 4 values each: parallel
        -- arrays, so waking a task allocates nothing
        rq_co = {}, rq_n = {}, rq_a = {}, rq_b = {}, rq_c = {}, rq_d = {},
        rq_head = 1, rq_tail = 0,
        sessions = {},     -- session -> { [request id] = co }
        in_flight = 0,
        timers = {},       -- list of { at = t, co = co }
    }, sched_mt)
end

-- wake(co [, a [, b [, c [, d]]]]): resume co with those values (at most
-- four: a reply, or nil and a transport error's three fields)
function sched_mt:wake(co, ...)
    local k = self.rq_tail + 1
    self.rq_tail = k
    self.rq_co[k] = co
    local n = select("#", ...)
    self.rq_n[k] = n
    if n > 0 then
        self.rq_a[k], self.rq_b[k], self.rq_c[k], self.rq_d[k] = ...
    end
end

-- Called from a task: yields until the loop resumes it.
local function wait()
    return co_yield(WAIT)
end

local group_mt = {}
group_mt.__index = group_mt

-- A task's result from what pcall(task) returned.
local function task_result(ok, ...)
    if not ok then
        return { ok = false, err = (...) }
    end
    local first, second = ...
    if first == nil and second ~= nil then
        return { ok = false, err = second }
    end
    return { ok = true, value = first, n = select("#", ...), ... }
end

-- A worker runs the group's tasks one after the other until none is left;
-- a group has at most `concurrency` workers, so a task costs no coroutine
-- of its own.
local function worker(sched, group)
    local tasks, results = group.tasks, group.results
    while true do
        local i = group.next_index
        if i > group.count then
            break
        end
        group.next_index = i + 1
        results[i] = task_result(pcall(tasks[i]))
        group.finished = group.finished + 1
    end
    group.running = group.running - 1
    if group.running == 0 then
        group.done = true
        if group.parent then
            sched:wake(group.parent)
        end
    end
end

local function start_group(sched, tasks, concurrency, parent)
    local count = #tasks
    local group = setmetatable({
        tasks = tasks, count = count, results = {}, running = 0, finished = 0,
        next_index = 1, done = count == 0, parent = parent,
    }, group_mt)
    for _ = 1, math_min(concurrency, count) do
        local co = co_create(worker)
        task_sched[co] = sched
        group.running = group.running + 1
        sched:wake(co, sched, group)
    end
    return group
end

-- Runs everything that is ready, in order; tasks woken meanwhile run too.
function sched_mt:run_ready()
    local rq_co, rq_n, rq_a, rq_b, rq_c, rq_d = self.rq_co, self.rq_n, self.rq_a, self.rq_b, self.rq_c, self.rq_d
    while self.rq_head <= self.rq_tail do
        local k = self.rq_head
        self.rq_head = k + 1
        local co, n = rq_co[k], rq_n[k]
        local a, b, c, d = rq_a[k], rq_b[k], rq_c[k], rq_d[k]
        rq_co[k], rq_a[k], rq_b[k], rq_c[k], rq_d[k] = nil, nil, nil, nil, nil
        if co_status(co) == "suspended" then
            local ok, what
            if n == 0 then
                ok, what = co_resume(co)
            elseif n == 1 then
                ok, what = co_resume(co, a)
            elseif n == 2 then
                ok, what = co_resume(co, a, b)
            else
                ok, what = co_resume(co, a, b, c, d)
            end
            if not ok then
                -- the worker catches everything a task raises, so this is a
                -- bug in the loop itself
                error("wecom.parallel: internal error: " .. tostring(what), 0)
            end
            if what ~= WAIT and co_status(co) == "suspended" then
                self:wake(co)
            end
        end
    end
    self.rq_head, self.rq_tail = 1, 0
end

function sched_mt:next_timer()
    local soonest = math_huge
    for i = 1, #self.timers do
        local at = self.timers[i].at
        if at < soonest then
            soonest = at
        end
    end
    return soonest
end

function sched_mt:fire_timers()
    local timers, t = self.timers, now()
    local i = 1
    while i <= #timers do
        if timers[i].at <= t then
            local timer = table_remove(timers, i)
            self:wake(timer.co)
        else
            i = i + 1
        end
    end
end

-- Waits for I/O or the next timer, then queues the tasks that can go on.
function sched_mt:wait_events()
    local deadline = self:next_timer()
    if self.in_flight > 0 then
        local count = 0
        for _ in pairs(self.sessions) do
            count = count + 1
        end
        local wait_for = deadline == math_huge and 1 or math.max(0, deadline - now())
        if count > 1 then
            wait_for = math_min(wait_for, MULTI_SESSION_SLICE)
        end
        for session, waiting in pairs(self.sessions) do
            local done = session:poll(wait_for)
            for i = 1, #done do
                local item = done[i]
                local co = waiting[item.id]
                if co then
                    waiting[item.id] = nil
                    self.in_flight = self.in_flight - 1
                    if item.res then
                        self:wake(co, item.res)
                    else
                        self:wake(co, nil, item.err, item.code, item.curl_code)
                    end
                end
            end
            if next(waiting) == nil then
                self.sessions[session] = nil
            end
        end
    elseif deadline ~= math_huge then
        local delay = deadline - now()
        if delay > 0 then
            core.sleep(delay)
        end
    else
        error("wecom.parallel: every task is waiting and nothing can wake them", 0)
    end
    self:fire_timers()
end

function sched_mt:loop(group)
    while true do
        self:run_ready()
        if group.done then
            return
        end
        self:wait_events()
    end
end

-- The scheduler the calling coroutine runs in, or nil outside the loop.
function _M.current()
    local co = co_running()
    if co == nil then
        return nil
    end
    return task_sched[co]
end

-- Called by the transport from inside a task: submit, yield, get the reply.
function sched_mt:http(session, req)
    local co = co_running()
    local id = session:submit(req)
    local waiting = self.sessions[session]
    if not waiting then
        waiting = {}
        self.sessions[session] = waiting
    end
    waiting[id] = co
    self.in_flight = self.in_flight + 1
    return wait()
end

function sched_mt:sleep(seconds)
    local timers = self.timers
    timers[#timers + 1] = { at = now() + seconds, co = co_running() }
    wait()
end

-- sleep(seconds): yields to the loop inside a task; elsewhere wecom.env's
-- sleep (ngx.sleep inside nginx, which raises naming a phase that cannot
-- yield; a blocking sleep outside it)
function _M.sleep(seconds)
    local sched = _M.current()
    if sched then
        return sched:sleep(seconds)
    end
    if seconds > 0 or env.in_nginx then
        env.sleep(seconds)
    end
end

-- check_concurrency(n, where, level): raises unless n is nil or an integer >= 1;
-- level as error() counts it from the function calling this one
function _M.check_concurrency(n, where, level)
    if n ~= nil and (type(n) ~= "number" or n < 1 or n ~= math_floor(n)) then
        error(where .. ": concurrency must be a positive integer (got " .. tostring(n) .. ")", level + 1)
    end
end

-- parallel(tasks [, { concurrency = 16 }]) -> results
function _M.run(tasks, opts)
    if type(tasks) ~= "table" then
        error("wecom.parallel: tasks must be an array of functions (got " .. type(tasks) .. ")", 2)
    end
    local count = #tasks
    for i = 1, count do
        if type(tasks[i]) ~= "function" then
            error("wecom.parallel: tasks[" .. i .. "] must be a function (got " .. type(tasks[i]) .. ")", 2)
        end
    end
    for k in pairs(tasks) do
        if type(k) ~= "number" or k < 1 or k > count or k ~= math_floor(k) then
            error("wecom.parallel: tasks must be an array (unexpected key " .. tostring(k) .. ")", 2)
        end
    end
    local concurrency = DEFAULT_CONCURRENCY
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("wecom.parallel: opts must be a table (got " .. type(opts) .. ")", 2)
        end
        for k in pairs(opts) do
            if k ~= "concurrency" then
                error("wecom.parallel: unknown option '" .. tostring(k) .. "'", 2)
            end
        end
        if opts.concurrency ~= nil then
            concurrency = opts.concurrency
            _M.check_concurrency(concurrency, "wecom.parallel", 2)
        end
    end

    if ngx_parallel and ngx_parallel.available() then
        return ngx_parallel.run(tasks, concurrency, task_result)
    end

    local sched = _M.current()
    if sched then
        -- nested: the new tasks join the running loop, the caller waits
        local group = start_group(sched, tasks, concurrency, co_running())
        if not group.done then
            wait()
        end
        return group.results
    end

    sched = new_scheduler()
    local group = start_group(sched, tasks, concurrency, nil)
    sched:loop(group)
    return group.results
end

return _M
