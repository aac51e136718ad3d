-- Child Lua processes for multi-process specs: the same interpreter and the
-- same module paths as the spec that spawns them.
--
--   local child = require "helpers.child"
--   local p = child.spawn(code, args)   -- p.pid; p:line() reads one line; p:wait() -> rest
--   local out = child.run(code, args)   -- runs to the end, returns its output

local _M = {}

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
_M.quote = quote

_M.interpreter = jit and "luajit" or "lua5.4"

-- The shell command running script (a file) with args, in this runtime.
function _M.command(script, args)
    local parts = {
        "LUA_PATH=" .. quote(package.path), "LUA_CPATH=" .. quote(package.cpath),
        "exec", _M.interpreter, quote(script),
    }
    for _, a in ipairs(args or {}) do
        parts[#parts + 1] = quote(a)
    end
    return table.concat(parts, " ")
end

local Child = {}
Child.__index = Child

function Child:line()
    return self.pipe:read("*l")
end

-- Reads the rest of the output and waits for the process to end.
function Child:wait()
    local out = self.pipe:read("*a")
    self.pipe:close()
    if self.script then
        os.remove(self.script)
    end
    return out
end

-- spawn(code, args) -> child whose first output line (its pid) is consumed.
function _M.spawn(code, args)
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(code)
    f:close()
    local pipe = assert(io.popen("echo $$; " .. _M.command(script, args) .. " 2>&1", "r"))
    local pid = tonumber(pipe:read("*l"))
    return setmetatable({ pipe = pipe, pid = pid, script = script }, Child)
end

function _M.run(code, args)
    return _M.spawn(code, args):wait()
end

return _M
