-- A transport that hands rejections back late, one by one: wraps a real
-- transport (the exchange with the server is real; only the answer waits)
-- so that the n-th answer of `path` carrying `errcode` returns after
-- 0.2 + n * 0.01 s.  Many callers rejected at once then see their
-- rejections over half a second, most after another caller's refetch
-- (spec/integration/token_storm_spec.lua, spec/openresty/redis_site.lua).
--
--   app.transport = require("helpers.staggered").wrap(app.transport, path, 40014)

local parallel = require "wecom.parallel"

local _M = {}

function _M.wrap(real, path, errcode)
    local late = 0
    return setmetatable({
        request = function(_, req)
            local res, err = real:request(req)
            if res and req.url:find(path, 1, true)
                and res.body:find('"errcode":' .. errcode, 1, true) then
                late = late + 1
                parallel.sleep(0.2 + late * 0.01)
            end
            return res, err
        end,
    }, { __index = real })
end

return _M
