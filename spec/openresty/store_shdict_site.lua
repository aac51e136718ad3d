-- The nginx side of spec/openresty/store_shdict_spec.lua.
--
-- init()       init_by_lua: an app whose token store is wecom.store.shdict
-- contract()   content: runs one case of the store contract
--              (spec/helpers/store_contract.lua) on the shdict store:
--              ?case=<name> -> {"ok":true} | {"ok":false,"err":"..."}
-- call()       content: one API call (GET agent/get) -> JSON
-- hold_lock()  content: takes the app token's lock with a long lease and
--              never releases it (a worker that died holding it)
-- storm()      content: ?n= light threads make one call each with a second
--              app on the same store, whose rejections (?errcode=) come back
--              late, the k-th after 0.2 + k * 0.01 s -> {ok=, failed=}

local cjson = require "cjson.safe"
local core = require "wecom.core"
local wecom = require "wecom"
local contract = require "helpers.store_contract"

-- luacheck: globals ngx
local ngx = ngx

local _M = {}

local DICT = "contract"

local app, storm_app

local function env(name)
    local v = os.getenv(name)
    if v == nil or v == "" then
        error("store_shdict_site: environment variable " .. name .. " is not set", 0)
    end
    return v
end

local function send_json(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(value))
end

local function new_app()
    return wecom.new {
        corpid = env("SPEC_CORPID"),
        secret = env("SPEC_SECRET"),
        agentid = tonumber(env("SPEC_AGENTID")),
        base_url = env("SPEC_BASE_URL"),
        store = wecom.store.shdict(DICT),
        retries = 0,
        timeout = 1,
    }
end

function _M.init()
    app = new_app()
    storm_app = new_app()
end

local ctx = {
    name = "shdict",
    new = function() return wecom.store.shdict(DICT) end,
    raw = function(key, expires_text, value)
        return ngx.shared[DICT]:set(key, expires_text .. "|" .. value) == true
    end,
    raw_text = function(key, text)
        assert(ngx.shared[DICT]:set(key, text))
    end,
    sleep = ngx.sleep,
}

function _M.contract()
    local ok, err = pcall(contract.run, ctx, ngx.unescape_uri(ngx.var.arg_case))
    return send_json(200, { ok = ok, err = not ok and tostring(err) or nil })
end

function _M.call()
    local started = core.monotonic()
    local data, err = app:get("/cgi-bin/agent/get", { agentid = app.agentid })
    if not data then
        return send_json(500, { error = err.kind, message = tostring(err) })
    end
    return send_json(200, { agentid = data.agentid, took = core.monotonic() - started })
end

function _M.hold_lock()
    -- another store object: the lock is not this request's to release
    local ok = wecom.store.shdict(DICT):lock(app.token_key, 600)
    app.store:delete(app.token_key)
    return send_json(200, { locked = ok })
end

function _M.storm()
    local n, errcode = tonumber(ngx.var.arg_n), ngx.var.arg_errcode
    local real, late = storm_app.transport, 0
    storm_app.transport = setmetatable({
        request = function(_, req)
            local res, err = real:request(req)
            if res and req.url:find("/cgi-bin/agent/get", 1, true)
                and res.body:find('"errcode":' .. errcode, 1, true) then
                late = late + 1
                ngx.sleep(0.2 + late * 0.01)
            end
            return res, err
        end,
    }, { __index = real })
    local tasks = {}
    for i = 1, n do
        tasks[i] = function()
            return storm_app:get("/cgi-bin/agent/get", { agentid = storm_app.agentid })
        end
    end
    local results = wecom.parallel(tasks, { concurrency = n })
    storm_app.transport = real
    local ok, failed = 0, {}
    for _, r in ipairs(results) do
        if r.ok then
            ok = ok + 1
        else
            failed[#failed + 1] = tostring(r.err)
        end
    end
    return send_json(200, { ok = ok, failed = failed })
end

return _M
