-- placeholder
local _M = { routes = {} }
return _M
