-- The nginx side of spec/openresty/callback_dedupe_spec.lua: a callback
-- handler with dedupe in the lua_shared_dict "dedupe", built once per
-- worker, whose router counts the runs of each event in the dict "results".
--
--   /cb        the handler
--   /results   { runs = { [Event] = n }, last_worker = { [Event] = pid } } (JSON)
-- Every response carries X-Worker: the pid of the worker that answered.

-- luacheck: globals ngx
local ngx = ngx
local cjson = require "cjson.safe"
local site = require "callback_site"

local _M = {}

local function count(event)
    local results = ngx.shared.results
    local n = results:incr("runs:" .. tostring(event.type), 1, 0)
    results:set("worker:" .. tostring(event.type), ngx.worker.pid())
    return n
end

local function build()
    local wecom = require "wecom"
    -- a claim left by a delivery that died is free again after 2 s
    local cb = site.callback { dedupe = wecom.store.shdict("dedupe"), dedupe_lease = 2 }
    local router = wecom.callback.router()
    router:on("text", function(event)
        count(event)
        return "<xml><Content><![CDATA[re: " .. event.Content .. "]]></Content></xml>"
    end)
    router:on("boom_once", function(event)
        if count(event) == 1 then
            error("the first delivery fails")
        end
    end)
    router:on("slow", function(event)
        count(event)
        -- still running when the resends arrive
        ngx.sleep(0.5)
    end)
    router:on("slow_boom_once", function(event)
        -- the resends arrive while the first delivery runs, which then fails
        if count(event) == 1 then
            ngx.sleep(0.5)
            error("the first delivery fails, late")
        end
    end)
    router:on("crash_once", function(event)
        -- the first delivery's worker is killed while it handles the event:
        -- its claim is never settled nor released
        if count(event) == 1 then
            os.execute("kill -9 " .. ngx.worker.pid())
        end
    end)
    router:default(count)
    return { handle = wecom.ngx.callback_handler { callback = cb, router = router } }
end

_M.handle = site.handlers(build)("handle")

function _M.results()
    local out = { runs = {}, last_worker = {} }
    for _, key in ipairs(ngx.shared.results:get_keys(0)) do
        local kind, name = key:match("^(%a+):(.*)$")
        if kind == "runs" then
            out.runs[name] = ngx.shared.results:get(key)
        elseif kind == "worker" then
            out.last_worker[name] = ngx.shared.results:get(key)
        end
    end
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(out))
end

function _M.tag()
    ngx.header["X-Worker"] = ngx.worker.pid()
end

return _M
