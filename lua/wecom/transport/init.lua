-- wecom.transport: picks the HTTP transport once, at load.
--
-- Inside OpenResty (ngx.socket.tcp exists) the cosocket transport is used
-- when it is installed; everywhere else libcurl through wecom.core.

local ngx = ngx  -- luacheck: ignore 113
local require = require
local package = package

local function pick()
    if ngx and ngx.socket and ngx.socket.tcp and package.searchpath
        and package.searchpath("wecom.transport.ngx", package.path) then
        return require "wecom.transport.ngx"
    end
    return require "wecom.transport.curl"
end

return pick()
