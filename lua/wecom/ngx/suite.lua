-- wecom.ngx.suite: wecom.ngx.callback_handler{ suite = suite [, router = router] },
-- a suite's 指令回调 and 数据回调 URL served by nginx.
--
-- WeCom wants its answer within 1 s, and the bookkeeping of an install
-- (get_permanent_code, get_auth_info, the store) may take longer.  So the
-- handler answers as soon as the POST is verified and decrypted ("success"
-- for InfoType events, an empty 200 for others), and a timer then does the
-- bookkeeping (suite:handle) and runs the router on the event, event.auth
-- and all.  A failure there is logged (the event type and the error, never
-- a credential); WeCom is not asked again, so an install whose exchange
-- failed needs suite:authorize with its AuthCode within 10 minutes, or a
-- new install.  Without a free timer (lua_max_pending_timers) the work is
-- done before the answer.  Passive replies do not exist for suites: what
-- the router returns is ignored.
--
-- The ordinary handler of wecom.ngx serves the requests; the suite is
-- handed to it behind the callback object's interface.

local pcall = pcall
local tostring = tostring
local type = type

local env = require "wecom.env"
local errors = require "wecom.errors"

local _M = {}

local MAX_LOG_TEXT = 512

local function text(v)
    return errors.line((tostring(v):sub(1, MAX_LOG_TEXT)))
end

local function callable(v)
    return type(v) == "function"
end

local OPTIONS = {
    suite = errors.kind("a wecom.suite (wecom.suite{ ... } with token and aes_key)", function(v)
        return type(v) == "table" and callable(v.decrypt) and callable(v.handle)
            and callable(v.verify_url)
    end),
    router = errors.kind("a wecom.callback router (wecom.callback.router())", function(v)
        return type(v) == "table" and callable(v.dispatch)
    end),
}

-- the bookkeeping and the routing of one event, after the answer
local function after(suite, router, event)
    local ok, done, err = pcall(suite.handle, suite, event)
    if not ok or not done then
        env.log("err", "wecom suite ", text(suite.suite_id), ": bookkeeping of event ", text(event.type),
            " failed: ", text(ok and err or done))
    end
    if router then
        local rok, rerr = pcall(router.dispatch, router, event)
        if not rok then
            env.log("err", "wecom suite ", text(suite.suite_id), ": handler for event ", text(event.type),
                " failed: ", text(rerr))
        end
    end
end

-- handler(opts, callback_handler) -> function for content_by_lua*
-- callback_handler: wecom.ngx's, which serves the requests
function _M.handler(opts, callback_handler)
    errors.options("wecom.ngx.callback_handler", opts, OPTIONS, { "suite" }, 3)
    local ngx = env.ngx
    if not ngx then
        errors.usage("wecom.ngx.callback_handler", "needs nginx with lua-nginx-module (call it inside nginx)", 3)
    end
    local suite, router = opts.suite, opts.router
    -- raises now, not at the first request, for a suite without callback settings
    suite:verify_url { msg_signature = "", timestamp = "", nonce = "", echostr = "" }

    local timer_at = ngx.timer.at
    local function deferred(premature, event)
        if not premature then
            return after(suite, router, event)
        end
        -- nginx is shutting down: do the bookkeeping, which may still finish
        return after(suite, nil, event)
    end

    local as_callback = {
        verify_url = function(_, query)
            return suite:verify_url(query)
        end,
        decrypt = function(_, query, body)
            return suite:decrypt(query, body)
        end,
        reply = function()
            return nil, errors.new("callback", "a suite's events get no passive reply")
        end,
    }
    local later = {
        dispatch = function(_, event)
            local ok, err = timer_at(0, deferred, event)
            if not ok then
                env.log("warn", "wecom suite ", text(suite.suite_id), ": no timer (", text(err),
                    "), keeping event ", text(event.type), " before answering")
                after(suite, router, event)
            end
            return nil
        end,
    }
    return callback_handler { callback = as_callback, router = later }
end

return _M
