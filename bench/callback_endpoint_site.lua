-- The nginx side of bench/callback_endpoint.lua.
--
--   /cb     wecom.ngx.callback_handler with a router whose default handler
--           does nothing (every event answers 200 with an empty body)
--   /noop   the reference: a no-op handler that reads the body and answers
--           200 with an empty body, as the handler does for such events
-- luacheck: globals ngx
local ngx = ngx

local _M = {}

local handler

function _M.init()
    local wecom = require "wecom"
    local cb = wecom.callback.new {
        token = os.getenv("BENCH_CB_TOKEN"),
        aes_key = os.getenv("BENCH_CB_AES_KEY"),
        receive_id = os.getenv("BENCH_CB_RECEIVE_ID"),
    }
    local router = wecom.callback.router()
    router:default(function() end)
    handler = wecom.ngx.callback_handler { callback = cb, router = router }
end

function _M.callback()
    return handler()
end

function _M.noop()
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    return ngx.exit(body and ngx.HTTP_OK or ngx.HTTP_BAD_REQUEST)
end

return _M
