-- Injected faults: per path, a queue of {kind..., count}; the next `count`
-- requests to the path take the first entry, then the next one, and so on.

local store = require "wecom.emulator.store"

local type = type
local ipairs = ipairs
local remove = table.remove
local floor = math.floor

local _M = {}

local function normalize_path(path)
    if path:sub(1, 1) ~= "/" then
        path = "/" .. path
    end
    return path
end

local function is_int(v)
    return type(v) == "number" and v == floor(v)
end

-- The kinds of fault, checked in this order: the field, its test, what it
-- must be, and the string field that may come with it (`as`: its name in
-- the fault).
local KINDS = {
    { "errcode", is_int, "an integer", with = "errmsg", as = "detail" },
    { "http_status", function(v) return is_int(v) and v >= 100 and v <= 599 end, "an integer in 100..599" },
    { "body", function(v) return type(v) == "string" end, "a string", with = "content_type" },
    { "delay_ms", function(v) return type(v) == "number" and v >= 0 end, "a non-negative number" },
    { "close", function(v) return v == true end, "true" },
}

-- validate(spec) -> fault | nil, err
function _M.validate(spec)
    if type(spec) ~= "table" then
        return nil, "body must be a JSON object"
    end
    if type(spec.path) ~= "string" or spec.path == "" then
        return nil, "path must be a non-empty string"
    end
    local count = spec.count
    if count == nil then
        count = 1
    end
    if not is_int(count) or count < 1 then
        return nil, "count must be a positive integer"
    end
    local fault = { path = normalize_path(spec.path:gsub("[?#].*$", "")), count = count }
    local kinds = 0
    for _, k in ipairs(KINDS) do
        local name, value, with = k[1], spec[k[1]], k.with
        if value ~= nil then
            if not k[2](value) then
                return nil, name .. " must be " .. k[3]
            end
            if with and spec[with] ~= nil and type(spec[with]) ~= "string" then
                return nil, with .. " must be a string"
            end
            fault[name] = value
            if with then
                fault[k.as or with] = spec[with]
            end
            -- http_status with a body is that body's status, not a fault of its own
            if not (name == "http_status" and spec.body ~= nil) then
                kinds = kinds + 1
            end
        end
    end
    if kinds ~= 1 then
        return nil, "give exactly one of errcode, http_status, body (optionally with http_status), delay_ms, close"
    end
    return fault
end

function _M.add(fault)
    local key = "fault:" .. fault.path
    store.with_lock(key, function()
        local queue = store.get_json(key) or {}
        queue[#queue + 1] = fault
        store.set_json(key, queue)
    end)
end

-- take(path) -> fault | nil; one shared-dict read when no fault is queued.
function _M.take(path)
    local key = "fault:" .. path
    if store.get(key) == nil then
        return nil
    end
    return store.with_lock(key, function()
        local queue = store.get_json(key)
        if not queue or #queue == 0 then
            return nil
        end
        local fault = queue[1]
        fault.count = fault.count - 1
        if fault.count <= 0 then
            remove(queue, 1)
        end
        if #queue == 0 then
            store.delete(key)
        else
            store.set_json(key, queue)
        end
        return fault
    end)
end

return _M
