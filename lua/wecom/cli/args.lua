-- Command-line parsing for bin/wecom: GNU-style long options
-- (`--name value`, `--name=value`, flags without a value), `-h`, `-q`,
-- `--` to end the options, positional arguments checked by count.
--
--   local opts, args = args.parse(argv, first, spec)   -- raises a usage error
--
-- spec: { [name] = { value = "METAVAR" (absent: a flag), many = true,
--                    short = "q", check = function(v) -> v' | nil, why } }

local concat = table.concat
local error = error
local floor = math.floor
local getmetatable = getmetatable
local ipairs = ipairs
local pairs = pairs
local setmetatable = setmetatable
local sub = string.sub
local tonumber = tonumber
local tostring = tostring
local type = type

local _M = {}

-- A usage error: caught by wecom.cli.main, which exits 2 and prints the
-- command's usage line.
local USAGE = {}
USAGE.__index = USAGE
USAGE.__tostring = function(e) return e.message end

function _M.usage_error(message)
    error(setmetatable({ message = message }, USAGE), 0)
end

function _M.is_usage_error(v)
    return type(v) == "table" and getmetatable(v) == USAGE
end

local usage_error = _M.usage_error

local function by_short(spec, letter)
    for name, s in pairs(spec) do
        if s.short == letter then
            return name, s
        end
    end
end

local function store(opts, name, s, value)
    if value == "" then
        usage_error("--" .. name .. " needs a value (" .. s.value .. "), not an empty string")
    end
    if s.check then
        local v, why = s.check(value)
        if v == nil then
            usage_error("--" .. name .. " " .. (why or "has a bad value") .. " (got '" .. tostring(value) .. "')")
        end
        value = v
    end
    if s.many then
        local list = opts[name] or {}
        list[#list + 1] = value
        opts[name] = list
    else
        opts[name] = value
    end
end

-- parse(argv, first, spec, stop_at_word) -> opts, positional, next_index
--   Parses argv[first..]; options may come before and after positional
--   arguments.  stop_at_word: return at the first positional argument
--   (how the global options before the command are read).
function _M.parse(argv, first, spec, stop_at_word)
    local opts, positional = {}, {}
    local i = first or 1
    local only_words = false
    while argv[i] ~= nil do
        local a = argv[i]
        if only_words or a == "-" or sub(a, 1, 1) ~= "-" then
            if stop_at_word then
                return opts, positional, i
            end
            positional[#positional + 1] = a
        elseif a == "--" then
            only_words = true
        elseif sub(a, 1, 2) == "--" then
            local name, value = a:match("^%-%-([^=]+)=(.*)$")
            name = name or sub(a, 3)
            local s = spec[name]
            if not s then
                usage_error("unknown option --" .. name)
            end
            if s.value then
                if value == nil then
                    i = i + 1
                    value = argv[i]
                    if value == nil then
                        usage_error("--" .. name .. " needs a value (" .. s.value .. ")")
                    end
                end
                store(opts, name, s, value)
            else
                if value ~= nil then
                    usage_error("--" .. name .. " takes no value")
                end
                opts[name] = true
            end
        else
            -- -h, -q and the like, one letter at a time (-hq)
            for k = 2, #a do
                local letter = sub(a, k, k)
                local name, s = by_short(spec, letter)
                if not name then
                    usage_error("unknown option -" .. letter)
                end
                if s.value then
                    local value = sub(a, k + 1)
                    if value == "" then
                        i = i + 1
                        value = argv[i]
                        if value == nil then
                            usage_error("-" .. letter .. " needs a value (" .. s.value .. ")")
                        end
                    end
                    store(opts, name, s, value)
                    break
                end
                opts[name] = true
            end
        end
        i = i + 1
    end
    return opts, positional, i
end

-- merge(a, b) -> a new spec with the entries of both
function _M.merge(a, b)
    local out = {}
    for k, v in pairs(a) do
        out[k] = v
    end
    for k, v in pairs(b or {}) do
        out[k] = v
    end
    return out
end

-- Checks for option values.
function _M.integer(min, max)
    return function(v)
        local n = tonumber(v)
        if not n or n ~= floor(n) or n < min or (max and n > max) then
            return nil, "must be an integer " .. (max and ("in " .. min .. ".." .. max) or (">= " .. min))
        end
        return n
    end
end

function _M.number(min)
    return function(v)
        local n = tonumber(v)
        if not n or n ~= n or n < min then
            return nil, "must be a number >= " .. min
        end
        return n
    end
end

function _M.one_of(list)
    return function(v)
        for _, x in ipairs(list) do
            if v == x then
                return v
            end
        end
        return nil, "must be one of " .. concat(list, ", ")
    end
end

return _M
