-- wecom.argcheck: argument checks for the endpoint modules.
--
-- A wrong argument is the caller's bug, so a check raises (it does not
-- return nil, err), with a message naming the function and the argument:
--   "<prefix><fn>: <name> must be <what> (got <type>)"
-- The error points at the code that called the public function.  A check
-- made inside a local helper of that function passes `depth`, the number of
-- helper frames in between (default 0: called by the public function).
--
--   local check = require("wecom.argcheck").new("wecom.chain:")
--   check.need_string("groups", "chain_id", chain_id)

local error = error
local type = type
local floor = math.floor

local _M = {}

local function is_int(v)
    return type(v) == "number" and v == floor(v)
end
_M.is_int = is_int

-- new(prefix) -> a table of checks whose messages start with prefix .. fn
function _M.new(prefix)
    local check = {}

    -- `level` as error() counts it from the check that calls raise
    local function raise(fn, msg, level)
        error(prefix .. fn .. ": " .. msg, level + 1)
    end

    local function must_be(fn, name, want, got, level)
        raise(fn, name .. " must be " .. want .. " (got " .. type(got) .. ")", level + 1)
    end

    -- usage(fn, msg [, depth]): raise "<prefix><fn>: <msg>"
    function check.usage(fn, msg, depth)
        raise(fn, msg, 3 + (depth or 0))
    end

    -- fail(fn, name, want, got [, depth]): raise "... <name> must be <want> (got <type>)"
    function check.fail(fn, name, want, got, depth)
        must_be(fn, name, want, got, 3 + (depth or 0))
    end

    function check.need_string(fn, name, v, depth)
        if type(v) ~= "string" or v == "" then
            must_be(fn, name, "a non-empty string", v, 3 + (depth or 0))
        end
        return v
    end

    function check.opt_string(fn, name, v, depth)
        if v ~= nil and (type(v) ~= "string" or v == "") then
            must_be(fn, name, "a non-empty string", v, 3 + (depth or 0))
        end
        return v
    end

    function check.need_int(fn, name, v, depth)
        if not is_int(v) then
            must_be(fn, name, "an integer", v, 3 + (depth or 0))
        end
        return v
    end

    -- an integer >= min (default 0), or nil
    function check.opt_int(fn, name, v, min, depth)
        min = min or 0
        if v ~= nil and not (is_int(v) and v >= min) then
            must_be(fn, name, "an integer >= " .. min, v, 3 + (depth or 0))
        end
        return v
    end

    function check.opt_bool(fn, name, v, depth)
        if v ~= nil and type(v) ~= "boolean" then
            must_be(fn, name, "a boolean", v, 3 + (depth or 0))
        end
        return v
    end

    function check.need_table(fn, name, v, depth)
        if type(v) ~= "table" then
            must_be(fn, name, "a table", v, 3 + (depth or 0))
        end
        return v
    end

    return check
end

return _M
