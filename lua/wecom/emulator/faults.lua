-- Injected faults: per path, a queue of {kind..., count}; the next `count`
-- requests to the path take the first entry, then the next one, and so on.

local store = require "wecom.emulator.store"

local type = type
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
    if spec.errcode ~= nil then
        if not is_int(spec.errcode) then
            return nil, "errcode must be an integer"
        end
        if spec.errmsg ~= nil and type(spec.errmsg) ~= "string" then
            return nil, "errmsg must be a string"
        end
        fault.errcode, fault.detail = spec.errcode, spec.errmsg
        kinds = kinds + 1
    end
    if spec.http_status ~= nil then
        if not is_int(spec.http_status) or spec.http_status < 100 or spec.http_status > 599 then
            return nil, "http_status must be an integer in 100..599"
        end
        fault.http_status = spec.http_status
        if spec.body == nil then
            kinds = kinds + 1
        end
    end
    if spec.body ~= nil then
        if type(spec.body) ~= "string" then
            return nil, "body must be a string"
        end
        if spec.content_type ~= nil and type(spec.content_type) ~= "string" then
            return nil, "content_type must be a string"
        end
        fault.body, fault.content_type = spec.body, spec.content_type
        kinds = kinds + 1
    end
    if spec.delay_ms ~= nil then
        if type(spec.delay_ms) ~= "number" or spec.delay_ms < 0 then
            return nil, "delay_ms must be a non-negative number"
        end
        fault.delay_ms = spec.delay_ms
        kinds = kinds + 1
    end
    if spec.close ~= nil then
        if spec.close ~= true then
            return nil, "close must be true"
        end
        fault.close = true
        kinds = kinds + 1
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
