-- A one-shot HTTP receiver for the emulator's pushes: a child Lua process
-- (LuaSocket) that accepts one request, keeps it byte for byte and answers
-- 200 "success".
--
--   local receiver = require "helpers.receiver"
--   local r = receiver.start()        -- r.url
--   ... push to r.url ...
--   local raw = r:wait()              -- the raw request (request line, headers, body)

local child = require "helpers.child"
local sh = require "helpers.sh"

local _M = {}

local CODE = [[
local socket = require "socket"
local out = arg[1]
local server = assert(socket.bind("127.0.0.1", 0))
server:settimeout(30)
local _, port = server:getsockname()
io.write("port ", port, "\n")
io.flush()
local c = server:accept()
if not c then
    os.exit(1)
end
c:settimeout(10)
local lines, length = {}, 0
while true do
    local line = assert(c:receive("*l"))
    lines[#lines + 1] = line
    if line == "" then
        break
    end
    local n = line:lower():match("^content%-length:%s*(%d+)")
    if n then
        length = tonumber(n)
    end
end
local body = length > 0 and assert(c:receive(length)) or ""
local f = assert(io.open(out, "wb"))
f:write(table.concat(lines, "\r\n"), "\r\n", body)
f:close()
c:send("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nsuccess")
c:close()
]]

local Receiver = {}
Receiver.__index = Receiver

function Receiver:wait()
    self.child:wait()
    local raw = sh.read_file(self.file)
    os.remove(self.file)
    return raw
end

function _M.start()
    local file = os.tmpname()
    local c = child.spawn(CODE, { file })
    local line = c:line() or ""
    local port = line:match("^port (%d+)")
    assert(port, "receiver did not start: " .. line)
    return setmetatable({ child = c, file = file, port = tonumber(port),
                          url = "http://127.0.0.1:" .. port .. "/wecom/callback" }, Receiver)
end

return _M
