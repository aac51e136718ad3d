-- The nginx side of spec/openresty/callback_handler_spec.lua: callback
-- handlers built once per worker from SPEC_CB_TOKEN / SPEC_CB_AES_KEY /
-- SPEC_CB_RECEIVE_ID, with a router whose handlers misbehave on purpose.
--
--   /cb           handler with the router below
--   /cb_big       the same, in a location that lets nginx take 4 MiB bodies
--   /cb_bare      handler without a router
--   /cb_fail      handler whose router raises for every event, with the
--                 event's type and a long multi-line text in the error
--   /last         what the router saw last (JSON)
--
-- Also what callback_dedupe_site.lua builds on: callback(extra), the
-- callback of the SPEC_CB_* keys, and handlers(build).

-- luacheck: globals ngx
local ngx = ngx
local cjson = require "cjson.safe"

local _M = {}

-- the handler's error text: must reach error.log, never the response
_M.HANDLER_ERROR = "handler exploded: DETAIL-ONLY-FOR-THE-LOG"

local function remember(event)
    ngx.shared.results:set("last", cjson.encode {
        type = event.type, corpid = event.corpid, userid = event.userid, agentid = event.agentid,
        time = event.time, size = event.Data and #event.Data or nil,
        file = ngx.req.get_body_file() ~= nil,
    })
end

-- callback([extra]) -> a wecom.callback with the keys of SPEC_CB_TOKEN,
-- SPEC_CB_AES_KEY, SPEC_CB_RECEIVE_ID and the options in extra
function _M.callback(extra)
    local opts = {
        token = os.getenv("SPEC_CB_TOKEN"),
        aes_key = os.getenv("SPEC_CB_AES_KEY"),
        receive_id = os.getenv("SPEC_CB_RECEIVE_ID"),
    }
    for k, v in pairs(extra or {}) do
        opts[k] = v
    end
    return require("wecom").callback.new(opts)
end

-- handlers(build) -> handler(name): a content handler running build()'s
-- handler `name`; build() runs once per worker, at the first request
function _M.handlers(build)
    local built
    return function(name)
        return function()
            built = built or build()
            return built[name]()
        end
    end
end

local function build()
    local wecom = require "wecom"
    local cb = _M.callback()
    local router = wecom.callback.router()
    router:on("boom", function()
        error(_M.HANDLER_ERROR)
    end)
    router:on("boom_table", function()
        error({ reason = "a table" })
    end)
    router:on("text", function(event)
        remember(event)
        return "<xml><Content><![CDATA[re: " .. event.Content .. "]]></Content></xml>"
    end)
    router:on("empty_reply", function(event)
        remember(event)
        return ""
    end)
    router:on("table_reply", function(event)
        remember(event)
        return { not_a = "reply" }
    end)
    router:on("huge_reply", function()
        return string.rep("x", 1024 * 1024 + 1)
    end)
    router:on("slow", function(event)
        -- a handler may yield (ngx.sleep, cosockets) inside the handler's pcall
        ngx.sleep(0.01)
        remember(event)
    end)
    router:default(remember)

    local broken = wecom.callback.router()
    broken:default(function(event)
        error("failed for " .. tostring(event.type) .. "\nFORGED LOG LINE\n"
            .. string.rep("0123456789\n", 400000))
    end)
    return {
        handle = wecom.ngx.callback_handler { callback = cb, router = router },
        bare = wecom.ngx.callback_handler { callback = cb },
        fail = wecom.ngx.callback_handler { callback = cb, router = broken },
    }
end

local handler = _M.handlers(build)
_M.handle = handler("handle")
_M.bare = handler("bare")
_M.fail = handler("fail")

function _M.last()
    ngx.header["Content-Type"] = "application/json"
    ngx.print(ngx.shared.results:get("last") or "null")
    ngx.shared.results:delete("last")
end

return _M
