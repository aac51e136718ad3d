-- Code that runs inside nginx for spec/openresty/ngx_spec.lua: each case
-- exercises the SDK in a real worker and returns what it observed as JSON;
-- the spec makes the assertions.  Also a scripted HTTPS peer (peer()) for
-- the transport: chunked bodies, bodies ending at close, slow answers,
-- connections closed behind the client's back.
--
-- Environment: SPEC_BASE_URL, SPEC_CORPID, SPEC_SECRET, SPEC_AGENTID (the
-- emulator's system app), SPEC_PEER (https://localhost:<peer port>).

-- luacheck: globals ngx
local ngx = ngx
local cjson = require "cjson.safe"

local _M = {}

local function env(name)
    return os.getenv(name)
end

-- For every nginx-side module of the specs (redis_site, suite_site, ...):

-- need_env(who, name) -> the value of an environment variable nginx passes
-- on (env in the conf); raises naming the module `who` when it is unset
function _M.need_env(who, name)
    local v = os.getenv(name)
    if v == nil or v == "" then
        error(who .. ": environment variable " .. name .. " is not set", 0)
    end
    return v
end

-- send_json(status, value): the answer, value as JSON
function _M.send_json(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(value))
end

local function new_app(opts)
    local wecom = require "wecom"
    local o = {
        corpid = env("SPEC_CORPID"), secret = env("SPEC_SECRET"),
        agentid = tonumber(env("SPEC_AGENTID")), base_url = env("SPEC_BASE_URL"),
        store = wecom.store.shdict("wecom_spec"), retries = 0,
    }
    for k, v in pairs(opts or {}) do
        o[k] = v
    end
    return wecom.new(o)
end

local function err_table(err)
    if type(err) ~= "table" then
        return { raised = tostring(err) }
    end
    return { kind = err.kind, message = err.message, curl_code = err.curl_code, errmsg = err.errmsg,
        errcode = err.errcode, text = tostring(err) }
end

local function record(name, value)
    ngx.shared.results:set(name, cjson.encode(value))
end

-- init_worker: a call here must fail with an error naming the phase
function _M.init_worker()
    local app = new_app()
    local ok, err = pcall(app.get, app, "/cgi-bin/corpgroup/corp/get_chain_list")
    record("init_worker", { ok = ok, err = tostring(err), phase = ngx.get_phase() })
    -- the way out the docs show: a timer
    ngx.timer.at(0, function(premature)
        if premature then
            return
        end
        local data, terr = app:get("/cgi-bin/corpgroup/corp/get_chain_list")
        record("timer", { ok = data ~= nil, chains = data and #data.chains, err = terr and tostring(terr) })
    end)
end

-- log phase of /run/log_phase
function _M.log_phase()
    if ngx.var.uri ~= "/run/log_phase" then
        return
    end
    local app = new_app()
    local ok, err = pcall(app.get, app, "/cgi-bin/corpgroup/corp/get_chain_list")
    local sok, serr = pcall(require("wecom.parallel").sleep, 0.01)
    record("log", { ok = ok, err = tostring(err), sleep_ok = sok, sleep_err = tostring(serr) })
end

---------------------------------------------------------------------------
-- the scripted peer (HTTPS, the emulator's certificate for localhost)
---------------------------------------------------------------------------

local peer = {}

function peer.length()
    ngx.header["Content-Length"] = 11
    ngx.header["X-Multi"] = { "a", "b" }
    ngx.print("hello world")
end

function peer.chunked()
    for i = 1, 5 do
        ngx.print(string.rep(tostring(i), 1000))
        ngx.flush(true)
    end
end

function peer.echo()
    ngx.req.read_body()
    local body = ngx.req.get_body_data() or ""
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode { method = ngx.req.get_method(), body = body,
        content_type = ngx.var.http_content_type, content_length = ngx.var.http_content_length,
        host = ngx.var.http_host, args = ngx.var.args })
end

-- the connection number, to see keepalive reuse
function peer.conn()
    ngx.header["Content-Length"] = #tostring(ngx.var.connection)
    ngx.print(ngx.var.connection)
end

function peer.slow()
    ngx.sleep(1)
    ngx.print("late")
end

-- raw responses over the request socket
local function raw(response, then_close)
    local sock = ngx.req.socket(true)
    sock:send(response)
    if then_close then
        ngx.sleep(0.01)
    end
    return ngx.exit(ngx.OK)
end

-- a body that ends when the connection closes
function peer.until_close()
    return raw("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end", true)
end

-- says keep-alive, then closes: the client's pooled connection goes stale
function peer.stale()
    return raw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nstale", true)
end

function peer.garbage()
    return raw("NOT HTTP AT ALL\r\n\r\n", true)
end

-- the connection drops in the middle of the body
function peer.cut()
    return raw("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", true)
end

-- closed without a byte of response
function peer.nothing()
    return ngx.exit(444)
end

-- the server name the client sent in its TLS hello (SNI)
function peer.sni()
    ngx.print(ngx.var.ssl_server_name or "(none)")
end

function _M.peer()
    local name = ngx.var.uri:match("^/([%w_]+)")
    local fn = name and peer[name]
    if not fn then
        return ngx.exit(404)
    end
    return fn()
end

---------------------------------------------------------------------------
-- cases
---------------------------------------------------------------------------

local cases = {}

local function transport(opts)
    local o = { timeout = 2, user_agent = "wecom-spec" }
    for k, v in pairs(opts or {}) do
        o[k] = v
    end
    return require("wecom.transport").new(o)
end

local function peer_url(path)
    return env("SPEC_PEER") .. path
end

local function response(res, err)
    if not res then
        return { err = err_table(err) }
    end
    return { status = res.status, headers = res.headers, body = res.body }
end

function cases.transport_name()
    return { name = require("wecom.transport").name }
end

function cases.content_length()
    return response(transport():request { method = "GET", url = peer_url("/length") })
end

function cases.chunked()
    return response(transport():request { method = "GET", url = peer_url("/chunked") })
end

function cases.until_close()
    return response(transport():request { method = "GET", url = peer_url("/until_close") })
end

function cases.echo_post()
    return response(transport():request { method = "POST", url = peer_url("/echo?a=1&b=%2B"),
        headers = { ["Content-Type"] = "application/json" }, body = '{"x":1}' })
end

function cases.keepalive()
    local t = transport()
    local a = t:request { method = "GET", url = peer_url("/conn") }
    local b = t:request { method = "GET", url = peer_url("/conn") }
    -- another transport object shares the worker's pool
    local c = transport():request { method = "GET", url = peer_url("/conn") }
    return { a.body, b.body, c.body }
end

function cases.stale()
    local t = transport()
    local first = response(t:request { method = "GET", url = peer_url("/stale") })
    ngx.sleep(0.05)
    local second = response(t:request { method = "GET", url = peer_url("/length") })
    return { first = first, second = second }
end

function cases.timeout()
    local t = transport()
    local started = ngx.now()
    local res, err = t:request { method = "GET", url = peer_url("/slow?access_token=SECRET-TOKEN"), timeout = 0.2 }
    ngx.update_time()
    return { res = res ~= nil, err = err_table(err), elapsed = ngx.now() - started }
end

function cases.refused()
    local t = transport()
    -- nothing listens on port 1
    return response(t:request { method = "GET", url = "https://localhost:1/x?access_token=SECRET-TOKEN" })
end

-- nginx matches the certificate's DNS names only: an IP cannot verify,
-- though the peer's certificate names 127.0.0.1 too.  ?ip=::1: the peer's
-- IPv6 loopback listener
function cases.ip_host()
    local ip = ngx.var.arg_ip == "::1" and "[::1]" or "127.0.0.1"
    local t = transport()
    return response(t:request { method = "GET", url = env("SPEC_PEER"):gsub("localhost", ip)
        .. "/length?access_token=SECRET-TOKEN" })
end

-- a client whose base_url is the emulator's URL with 127.0.0.1 for localhost
function cases.ip_base_url()
    local app = new_app { base_url = env("SPEC_BASE_URL"):gsub("localhost", "127.0.0.1") }
    local data, err = app:get("/cgi-bin/corpgroup/corp/get_chain_list")
    return { ok = data ~= nil, err = err and err_table(err) }
end

function cases.no_resolver()
    local t = transport()
    return response(t:request { method = "GET", url = "https://wecom-spec.invalid/x?access_token=SECRET-TOKEN" })
end

function cases.garbage()
    return response(transport():request { method = "GET", url = peer_url("/garbage") })
end

function cases.sni()
    return response(transport():request { method = "GET", url = peer_url("/sni") })
end

function cases.cut()
    return response(transport():request { method = "GET", url = peer_url("/cut?access_token=SECRET-TOKEN") })
end

function cases.nothing()
    -- a transport of its own, but the worker's pool is shared: whether the
    -- first try reuses a pooled connection or not, the answer is the same
    return response(transport():request { method = "POST", url = peer_url("/nothing?access_token=SECRET-TOKEN"),
        body = "{}" })
end

function cases.options()
    local wecom = require "wecom"
    local ok, err = pcall(wecom.new, { corpid = "wwX", secret = "s", proxy = "http://proxy:3128" })
    local ok2, err2 = pcall(wecom.new, { corpid = "wwX", secret = "s", ca_file = "/nonexistent.pem" })
    return { proxy_ok = ok, proxy_err = tostring(err), ca_ok = ok2, ca_err = ok2 and "" or tostring(err2) }
end

-- the client end to end: token from the shared dict store, an API call
function cases.client()
    local app = new_app()
    local data, err = app:get("/cgi-bin/corpgroup/corp/get_chain_list")
    local tok, expires_at = app:token()
    return { chains = data and #data.chains, err = err and err_table(err), token_len = tok and #tok,
        expires_in = expires_at and expires_at - ngx.now() }
end

-- a still-valid token survives a failed early refresh
function cases.keep_on_failure()
    local app = new_app()
    local store = app.store
    local now = ngx.now()
    store:set(app.token_key, "OLD-BUT-VALID", now + 100)   -- inside the refresh margin
    local tok = app:token()
    store:delete(app.token_key)
    return { token = tok }
end

-- a token close to expiry is replaced ahead of time, in the shared dict too
function cases.refresh_ahead()
    local app = new_app()
    local store = app.store
    -- an early refresh is tried at most once a minute per key and worker,
    -- and keep_on_failure has just tried one: start afresh
    require("wecom.token").invalidate(store, app.token_key, "NEAR-EXPIRY")
    store:set(app.token_key, "NEAR-EXPIRY", ngx.now() + 100)   -- inside the refresh margin
    local tok, expires_at = app:token()
    local stored = store:get(app.token_key)
    return { token = tok, stored = stored, expires_in = expires_at and expires_at - ngx.now() }
end

function cases.api_error()
    local app = new_app()
    local data, err = app:post("/cgi-bin/corpgroup/corp/get_chain_group", { chain_id = "nope" })
    return { data = data, err = err_table(err) }
end

---------------------------------------------------------------------------
-- wecom.store.shdict (the store contract runs in redis_store_spec's nginx:
-- what is here is the shdict's own)
---------------------------------------------------------------------------

function cases.store_missing_dict()
    local wecom = require "wecom"
    local ok, err = pcall(wecom.store.shdict, "no_such_dict")
    local ok2, err2 = pcall(wecom.store.shdict, 42)
    return { ok = ok, err = tostring(err), ok2 = ok2, err2 = tostring(err2),
        tostring = tostring(wecom.store.shdict("wecom_spec")) }
end

function cases.store_wait()
    local store = require("wecom").store.shdict("wecom_spec")
    assert(store:lock("W", 5))
    local started = ngx.now()
    local waiter = ngx.thread.spawn(function()
        store:wait("W", 2)
        ngx.update_time()
        return ngx.now() - started
    end)
    ngx.sleep(0.05)
    store:unlock("W")
    local _, waited = ngx.thread.wait(waiter)
    -- nobody unlocks: the wait ends after its timeout
    ngx.update_time()
    local t0 = ngx.now()
    store:wait("W2", 0.1)
    ngx.update_time()
    return { waited = waited, timed_out_after = ngx.now() - t0 }
end

---------------------------------------------------------------------------
-- wecom.parallel under nginx
---------------------------------------------------------------------------

function cases.parallel_shape()
    local wecom = require "wecom"
    local results = wecom.parallel({
        function() return 1, nil, 3 end,
        function() return nil, "failed" end,
        function() error({ code = 7 }) end,
        function() end,
        function() return "x" end,
    }, { concurrency = 2 })
    local plain = {}
    for i, r in ipairs(results) do
        plain[i] = { ok = r.ok, value = r.value, n = r.n, err = r.err, v1 = r[1], v2 = r[2], v3 = r[3] }
    end
    return { results = plain, count = #results, empty = #wecom.parallel({}) }
end

function cases.parallel_concurrency()
    local wecom = require "wecom"
    local running, max_running = 0, 0
    local tasks = {}
    -- the module's sleep: ngx.sleep here
    local parallel = require "wecom.parallel"
    for i = 1, 12 do
        local n = i
        tasks[i] = function()
            running = running + 1
            if running > max_running then
                max_running = running
            end
            parallel.sleep(0.05)
            running = running - 1
            return n
        end
    end
    ngx.update_time()
    local t0 = ngx.now()
    local results = wecom.parallel(tasks, { concurrency = 4 })
    ngx.update_time()
    local values = {}
    for i, r in ipairs(results) do
        values[i] = r.value
    end
    -- nested: a task runs its own parallel batch
    local nested = wecom.parallel({
        function()
            local inner = wecom.parallel({ function() return "a" end, function() return "b" end })
            return inner[1].value .. inner[2].value
        end,
    })
    return { max_running = max_running, values = values, elapsed = ngx.now() - t0,
        nested = nested[1].value }
end

-- a cold token, many light threads of one worker: one gettoken
function cases.parallel_tokens()
    local app = new_app()
    local tasks = {}
    for i = 1, 20 do
        tasks[i] = function()
            return app:get("/cgi-bin/corpgroup/corp/get_chain_list")
        end
    end
    local results = require("wecom").parallel(tasks, { concurrency = 20 })
    local ok = 0
    for _, r in ipairs(results) do
        if r.ok then
            ok = ok + 1
        end
    end
    return { ok = ok }
end

---------------------------------------------------------------------------
-- wecom.ngx.callback_handler options
---------------------------------------------------------------------------

function cases.handler_options()
    local wecom = require "wecom"
    local out = {}
    local function try(name, opts)
        local ok, err = pcall(wecom.ngx.callback_handler, opts)
        out[name] = ok and "ok" or tostring(err)
    end
    try("nothing", nil)
    try("no_callback", { router = wecom.callback.router() })
    try("bad_router", { callback = wecom.callback.new { token = "t",
        aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", receive_id = false }, router = 5 })
    try("unknown", { callback = {}, routr = 1 })
    try("good", { callback = wecom.callback.new { token = "t",
        aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", receive_id = false } })
    return out
end

function cases.flush()
    ngx.shared.wecom_spec:flush_all()
    return {}
end

function cases.results()
    local out = {}
    for _, key in ipairs(ngx.shared.results:get_keys(0)) do
        out[key] = cjson.decode(ngx.shared.results:get(key))
    end
    return out
end

function cases.log_phase()
    return { logged = "later" }
end

-- serve(cases): runs the case the URI /run/<name> names and answers with
-- what it returned, as JSON (a case that raised: 500 and the error)
function _M.serve(cases_table)
    local name = ngx.var.uri:match("^/run/([%w_]+)$")
    local fn = name and cases_table[name]
    if not fn then
        return ngx.exit(404)
    end
    local ok, result = pcall(fn)
    if not ok then
        return _M.send_json(500, { raised = tostring(result) })
    end
    return _M.send_json(200, result)
end

function _M.run()
    return _M.serve(cases)
end

return _M
