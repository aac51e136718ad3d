-- wecom.budget: a client-side call budget over sliding time windows.
--
-- WeCom counts some APIs against quotas (idconvert/unionid_to_external_userid:
-- 100,000 calls an hour, 480,000 a day and 7,500,000 a month, reference §6.2) and answers 45009
-- once one is spent, in the middle of whatever bulk job was running.  A
-- budget lets that job pace itself instead: it takes a call from the budget
-- before each request and, when none is left, learns how long to wait.
--
--   local b = budget.new{ limits = budget.IDCONVERT }   -- { { seconds, calls }, ... }
--   local ok, wait = b:take()    -- true | false, seconds until a call fits
--   b:remaining()                -- calls left in the tightest window now
--
-- Each window is counted in 60 buckets of window/60 seconds.  A call is
-- allowed when the calls of the current bucket and the 60 before it (a span
-- a little longer than the window) leave room; so no window of the given
-- length, wherever WeCom starts it, ever sees more calls than the limit.
-- A budget lives in one Lua state: share one object between the clients
-- that draw on one quota (a provider's subject_type 1 quota is one for all
-- its authorized corps).

local error = error
local getmetatable = getmetatable
local ipairs = ipairs
local math_floor = math.floor
local math_huge = math.huge
local pairs = pairs
local concat = table.concat
local setmetatable = setmetatable
local type = type

local core = require "wecom.core"
local errors = require "wecom.errors"

local _M = {}

local BUCKETS = 60

-- idconvert/unionid_to_external_userid and corpgroup/unionid_to_external_userid
-- (97108, 95818): per corp for subject_type 0, per provider for 1; 100,000
-- an hour, 480,000 a day, 7,500,000 a month (31 days: any calendar month)
_M.IDCONVERT = { { 3600, 100000 }, { 86400, 480000 }, { 31 * 86400, 7500000 } }
-- what is left with a mass_call_ticket (96250: it lifts the API's own quota,
-- not the base limits of every API, 90454: 10,000 a minute, 150,000 an hour)
_M.BASE = { { 60, 10000 }, { 3600, 150000 } }

local mt = {}
mt.__index = mt

function mt.__tostring(self)
    local parts = {}
    for i, w in ipairs(self.windows) do
        parts[i] = w.limit .. "/" .. w.seconds .. "s"
    end
    return "wecom.budget(" .. concat(parts, ", ") .. ")"
end

local LIMITS = errors.kind("a non-empty list of { seconds > 0, calls >= 1 }", function(v)
    if type(v) ~= "table" or v[1] == nil then
        return false
    end
    for _, l in ipairs(v) do
        if type(l) ~= "table" or type(l[1]) ~= "number" or l[1] ~= l[1] or l[1] <= 0 or l[1] == math_huge
            or not errors.is_integer(l[2], 1, 2^53) then
            return false
        end
    end
    return true
end)

local NEW_OPTIONS = { limits = LIMITS, clock = errors.func }

-- new{ limits = { { seconds, calls }, ... } [, clock = fn] } -> budget
-- clock() -> seconds (default: the wall clock, wecom.core.now).
function _M.new(opts)
    errors.options("wecom.budget.new", opts, NEW_OPTIONS, { "limits" })
    local windows = {}
    for i, l in ipairs(opts.limits) do
        windows[i] = { seconds = l[1], limit = l[2], size = l[1] / BUCKETS, counts = {} }
    end
    return setmetatable({ windows = windows, clock = opts.clock or core.now }, mt)
end

function _M.is_budget(v)
    return getmetatable(v) == mt
end

-- the calls counted in w's span ending at bucket `now_idx` (old buckets dropped)
local function used(w, now_idx)
    local total = 0
    local oldest = now_idx - BUCKETS
    for idx, n in pairs(w.counts) do
        if idx < oldest then
            w.counts[idx] = nil
        else
            total = total + n
        end
    end
    return total
end

-- seconds until n more calls fit in window w (0 when they fit now)
local function wait_for(w, now, n)
    local now_idx = math_floor(now / w.size)
    local over = used(w, now_idx) + n - w.limit
    if over <= 0 then
        return 0
    end
    if n > w.limit then
        return math_huge
    end
    -- buckets leave the span oldest first: find the one whose leaving makes room
    local freed = 0
    for idx = now_idx - BUCKETS, now_idx do
        freed = freed + (w.counts[idx] or 0)
        if freed >= over then
            return (idx + BUCKETS + 1) * w.size - now
        end
    end
    return math_huge   -- not reached: the span holds every counted call
end

local COUNT = errors.kind("an integer >= 1", function(v) return v == nil or errors.is_integer(v, 1, 2^53) end)

-- wait_time([n]) -> seconds until n calls (default 1) fit; 0 = now
function mt.wait_time(self, n)
    errors.need("wecom.budget:wait_time", "n", n, COUNT)
    n = n or 1
    local now = self.clock()
    local longest = 0
    for _, w in ipairs(self.windows) do
        local wait = wait_for(w, now, n)
        if wait > longest then
            longest = wait
        end
    end
    return longest
end

-- take([n]) -> true | false, seconds to wait.  Counts n calls (default 1)
-- when every window has room for them; counts nothing otherwise.
function mt.take(self, n)
    errors.need("wecom.budget:take", "n", n, COUNT)
    n = n or 1
    local wait = self:wait_time(n)
    if wait > 0 then
        return false, wait
    end
    local now = self.clock()
    for _, w in ipairs(self.windows) do
        local idx = math_floor(now / w.size)
        w.counts[idx] = (w.counts[idx] or 0) + n
    end
    return true
end

-- remaining() -> the calls that fit now
function mt.remaining(self)
    local now = self.clock()
    local least = math_huge
    for _, w in ipairs(self.windows) do
        local left = w.limit - used(w, math_floor(now / w.size))
        if left < least then
            least = left
        end
    end
    return least < 0 and 0 or least
end

-- The budgets the SDK keeps per process, by a key naming the quota.
-- (kept for the process' life: a budget remembers the calls made)
local shared = {}

-- shared(key, limits) -> the process' budget for key, made on first use
function _M.shared(key, limits)
    if type(key) ~= "string" then
        error("wecom.budget.shared: key must be a string", 2)
    end
    local b = shared[key]
    if not b then
        b = _M.new { limits = limits }
        shared[key] = b
    end
    return b
end

return _M
