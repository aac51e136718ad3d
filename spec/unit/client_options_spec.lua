-- wecom.new / app:downstream option validation, tostring, helpers.
local wecom = require "wecom"
local client = require "wecom.client"

local SECRET = "very-secret-value-123"

local function base(extra)
    local opts = { corpid = "wwUPSTREAM", secret = SECRET, agentid = 1000002 }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return opts
end

-- wecom.new raises "wecom.new: opts.<name> ..." (or "unknown option '<name>'")
local function raises_naming(opts, name, unknown)
    local ok, err = pcall(wecom.new, opts)
    assert.is_false(ok)
    assert.matches(unknown and "wecom.new: unknown option '" .. name .. "'" or "wecom.new: opts." .. name,
        err, 1, true)
end

describe("wecom.new", function()
    it("builds a client from valid options", function()
        local app = wecom.new(base { timeout = 3, retries = 0, base_url = "https://127.0.0.1:9/" })
        assert.equal("wwUPSTREAM", app.corpid)
        assert.equal(1000002, app.agentid)
        assert.equal(3, app.timeout)
        assert.equal(0, app.retries)
        assert.equal("https://127.0.0.1:9", app.base_url)  -- trailing slash dropped
    end)

    it("requires corpid and secret", function()
        local ok, err = pcall(wecom.new, { secret = SECRET })
        assert.is_false(ok)
        assert.matches("wecom.new: opts.corpid is required (a non-empty string)", err, 1, true)
        raises_naming({ secret = SECRET }, "corpid")
        raises_naming({ corpid = "ww" }, "secret")
        raises_naming({ corpid = "", secret = SECRET }, "corpid")
    end)

    it("names the option of the wrong type", function()
        raises_naming(base { agentid = "1000002" }, "agentid")
        raises_naming(base { agentid = 1.5 }, "agentid")
        raises_naming(base { timeout = "5" }, "timeout")
        raises_naming(base { timeout = 0 }, "timeout")
        raises_naming(base { retries = -1 }, "retries")
        raises_naming(base { ca_file = 42 }, "ca_file")
        raises_naming(base { base_url = true }, "base_url")
        raises_naming(base { store = {} }, "store")
        raises_naming(base { proxy = 1 }, "proxy")
        raises_naming(base { max_body = 0 }, "max_body")
        raises_naming(base { max_body = 1.5 }, "max_body")
        local ok, err = pcall(wecom.new, base { timeout = -1 })
        assert.is_false(ok)
        assert.matches("wecom.new: opts.timeout must be a number of seconds in (0, 86400] (got number -1)",
            err, 1, true)
    end)

    it("rejects numbers out of range, infinities and NaN", function()
        local nan = 0 / 0
        for _, case in ipairs {
            { "retries", math.huge }, { "retries", 11 }, { "retries", nan }, { "retries", 1.5 },
            { "agentid", math.huge }, { "agentid", -1 }, { "agentid", 2^53 }, { "agentid", nan },
            { "timeout", math.huge }, { "timeout", 86401 }, { "timeout", -1 }, { "timeout", nan },
            { "connect_timeout", 0 }, { "connect_timeout", 86401 },
            { "backoff", -0.1 }, { "backoff", math.huge }, { "backoff", nan }, { "backoff", 61 },
        } do
            raises_naming(base { [case[1]] = case[2] }, case[1])
        end
        -- the edges themselves are fine
        local app = wecom.new(base { retries = 10, timeout = 86400, backoff = 0, connect_timeout = 0.5 })
        assert.equal(10, app.retries)
        assert.equal(0, wecom.new(base { retries = 0 }).retries)
    end)

    it("rejects a base_url with a query, a fragment, credentials or blanks", function()
        for _, url in ipairs {
            "https://", "https:///x", "https://host/?a=b", "https://host#frag", "https://user:pw@host",
            "https://host /x", "https://host\n", "ftp://host", "https:host",
        } do
            raises_naming(base { base_url = url }, "base_url")
        end
        assert.equal("https://host:8443/prefix", wecom.new(base { base_url = "https://host:8443/prefix/" }).base_url)
    end)

    it("raises when ca_file cannot be read, naming it", function()
        local missing = os.tmpname()
        os.remove(missing)
        local ok, err = pcall(wecom.new, base { ca_file = missing })
        assert.is_false(ok)
        assert.matches("wecom.new: opts.ca_file cannot be read", err, 1, true)
        assert.matches(missing, err, 1, true)
        local present = os.tmpname()
        assert.is_table(wecom.new(base { ca_file = present }))
        os.remove(present)
    end)

    it("rejects unknown options (typos)", function()
        raises_naming(base { secert = "x" }, "secert", true)
        raises_naming(base { time_out = 5 }, "time_out", true)
    end)

    it("insists on https", function()
        raises_naming(base { base_url = "http://qyapi.weixin.qq.com" }, "base_url")
    end)

    it("raises at the caller's line", function()
        local ok, err = pcall(function()
            local app = wecom.new(base { timeout = "x" })  -- not a tail call: keeps this frame
            return app
        end)
        assert.is_false(ok)
        assert.matches("client_options_spec", err, 1, true)
    end)

    it("never shows the secret in tostring or in its fields", function()
        local app = wecom.new(base())
        local s = tostring(app)
        assert.matches("wwUPSTREAM", s, 1, true)
        assert.matches("1000002", s, 1, true)
        assert.not_matches(SECRET, s, 1, true)
        for k, v in pairs(app) do
            assert.not_equal(SECRET, v, "field " .. tostring(k))
            if type(v) == "string" then assert.not_matches(SECRET, v, 1, true) end
        end
    end)
end)

describe("app:downstream", function()
    local app = wecom.new(base())

    it("validates its options", function()
        assert.has_error(function() app:downstream { agentid = 1 } end)
        assert.has_error(function() app:downstream { corpid = "wwD" } end)
        assert.has_error(function() app:downstream { corpid = "wwD", agentid = "1" } end)
        assert.has_error(function() app:downstream { corpid = "wwD", agentid = 1, business_type = 2 } end)
        assert.has_error(function() app:downstream { corpid = "wwD", agentid = 1, bussiness_type = 1 } end)
        assert.has_error(function() app:downstream("wwD") end)
    end)

    it("shares the app's settings and shows no credentials", function()
        local down = app:downstream { corpid = "wwDOWN", agentid = 7, business_type = 1 }
        assert.equal("downstream", down.kind)
        assert.equal(app, down.upstream)
        assert.equal(app.transport, down.transport)
        local s = tostring(down)
        assert.matches("wwDOWN", s, 1, true)
        assert.matches("business_type=1", s, 1, true)
        assert.not_matches(SECRET, s, 1, true)
        assert.is_nil(down.downstream)  -- only the app makes downstream clients
    end)

    it("defaults business_type to 0 as WeCom does", function()
        assert.equal(0, app:downstream { corpid = "wwD", agentid = 1 }.business_type)
    end)
end)

describe("client settings", function()
    -- every client kind keeps the same settings, copied from one list
    -- (wecom.options): a new one reaches them all without more code
    local options = require "wecom.options"
    local store = require("wecom.store.memory").new()
    local given = { timeout = 7, retries = 3, backoff = 1.5, store = store, base_url = "https://127.0.0.1:9" }
    local function same_settings(what, c)
        for _, d in ipairs(options.CONNECTION) do
            local name = d[1]
            if not d.transport or name == "timeout" then
                assert.equal(given[name], c[name], what .. "." .. name)
            end
        end
    end

    it("reach the app, its downstream clients, suites, their corp clients and providers", function()
        local app = wecom.new(base(given))
        same_settings("app", app)
        same_settings("downstream", app:downstream { corpid = "wwD", agentid = 1 })
        local suite = wecom.suite(options.settings_into({ suite_id = "wwSUITE", suite_secret = SECRET }, given))
        same_settings("suite", suite)
        same_settings("suite's token client", suite._api)
        local records = require "wecom.suite.records"
        assert(records.put_corp(store, suite._ns, { corpid = "wwCORP", permanent_code = "P", agentid = 5 }))
        same_settings("suite:corp", assert(suite:corp("wwCORP")))
        local provider = wecom.provider(options.settings_into({ corpid = "wwPROV", provider_secret = SECRET }, given))
        same_settings("provider", provider)
        same_settings("provider's token client", provider._api)
    end)
end)

describe("endpoint wiring", function()
    local app = wecom.new(base())
    local down = app:downstream { corpid = "wwD", agentid = 1 }

    it("creates app.chain and app.linkedcorp once, on first use", function()
        assert.is_nil(rawget(app, "chain"))
        local chain = app.chain
        assert.equal(app, chain.client)
        assert.equal(chain, app.chain)
        assert.equal(getmetatable(require("wecom.api.chain").new(app)), getmetatable(chain))
        assert.equal(app, app.linkedcorp.client)
    end)

    it("attaches the endpoint functions as methods", function()
        assert.equal(require("wecom.api.share").shared_corps, app.shared_corps)
        assert.equal(require("wecom.api.identity").oauth_url, app.oauth_url)
        assert.equal(require("wecom.api.identity").user_by_code, app.user_by_code)
        assert.equal(require("wecom.api.identity").jscode2session, app.jscode2session)
        assert.equal(require("wecom.api.identity").transfer_session, down.transfer_session)
        assert.equal(require("wecom.api.jsapi").config, down.jsapi_config)
        assert.equal(require("wecom.api.jsapi").agent_config, down.agent_config)
        assert.is_nil(down.chain)
        assert.is_nil(down.shared_corps)
        assert.is_nil(app.no_such_method)
    end)

    it("extend adds methods but never replaces the core ones", function()
        client.extend("both", { spec_helper_method = function(self) return self.kind end })
        assert.equal("app", app:spec_helper_method())
        assert.equal("downstream", down:spec_helper_method())
        assert.has_error(function() client.extend("app", { get = function() end }) end,
            "wecom.client.extend: 'get' is a core method")
        assert.has_error(function() client.extend("nope", {}) end,
            "wecom.client.extend: kind must be 'app', 'downstream' or 'both' (got string)")
    end)
end)

describe("request arguments", function()
    local app = wecom.new(base())
    it("raise on programmer mistakes before any I/O", function()
        assert.has_error(function() app:get("cgi-bin/x") end)
        assert.has_error(function() app:get(nil) end)
        assert.has_error(function() app:get("/x", "a=b") end)
        assert.has_error(function() app:get("/x", { access_token = "t" }) end)
        assert.has_error(function() app:get("/x", { a = {} }) end)
        assert.has_error(function() app:post("/x", 42) end)
        assert.has_error(function() app:post("/x", {}, nil, { idempotent = "yes" }) end)
        assert.has_error(function() app:post("/x", {}, nil, { retry = true }) end)
        assert.has_error(function() app:ticket("nope") end)
    end)

    local function raises_with(pattern, fn)
        local ok, err = pcall(fn)
        assert.is_false(ok)
        assert.matches(pattern, err, 1, true)
    end

    it("reject a per-call timeout that is not a positive number of seconds", function()
        for _, t in ipairs { 0, -1, 0 / 0, math.huge, 86401 } do
            raises_with("wecom:get: opts.timeout must be", function() app:get("/x", nil, { timeout = t }) end)
            raises_with("wecom:post: opts.timeout must be", function() app:post("/x", {}, nil, { timeout = t }) end)
        end
    end)

    it("name the call as users write it, at the caller's line", function()
        raises_with("client_options_spec.lua:", function() app:get("x") end)
        raises_with("wecom:get: path must be a string starting with '/'", function() app:get("x") end)
        raises_with("wecom:post: body must be a table or a JSON string (got number 42)",
            function() app:post("/x", 42) end)
        raises_with("wecom:post: body cannot be sent as JSON", function() app:post("/x", { f = print }) end)
        raises_with("wecom:get: query.access_token is set by the client",
            function() app:get("/x", { access_token = "t" }) end)
        raises_with("wecom:post: query.access_token is set by the client",
            function() app:post("/x?access_token=t", {}) end)
        raises_with("wecom:get: query.n must be a finite number", function() app:get("/x", { n = 0 / 0 }) end)
        raises_with("wecom:get: unknown option 'retry'", function() app:get("/x", nil, { retry = true }) end)
        raises_with("wecom:ticket: kind must be 'jsapi' or 'agent_config' (got string)",
            function() app:ticket("nope") end)
        raises_with("wecom:downstream: opts.business_type must be 0 (企业互联) or 1 (上下游) (got number 2)",
            function() app:downstream { corpid = "wwD", agentid = 1, business_type = 2 } end)
        local line = debug.getinfo(1, "l").currentline + 1
        local ok, err = pcall(function() local r = app:post("/x", {}, nil, { idempotent = 1 }); return r end)
        assert.is_false(ok)
        assert.matches("client_options_spec.lua:" .. line .. ": wecom:post: opts.idempotent must be a boolean",
            err, 1, true)
    end)

    it("reject paths with blanks, control characters or a fragment", function()
        for _, p in ipairs { "/cgi-bin/x y", "/cgi-bin/x\r\nHost: evil", "/cgi-bin/x#frag", "/x\0" } do
            raises_with("path", function() app:get(p) end)
            raises_with("path", function() app:post(p, {}) end)
        end
    end)

    it("reject query numbers that have no decimal form", function()
        raises_with("query.n", function() app:get("/x", { n = math.huge }) end)
        raises_with("query.n", function() app:get("/x", { n = 0 / 0 }) end)
    end)

    it("each_shared_corp checks its options before any request", function()
        local offline = wecom.new(base { base_url = "https://127.0.0.1:1", retries = 0 })
        raises_with("wecom:each_shared_corp: opts.concurrency must be an integer >= 1 (got number 0)",
            function() offline:each_shared_corp(function() end, { concurrency = 0 }) end)
        raises_with("wecom:each_shared_corp: opts.limit", function()
            offline:each_shared_corp(function() end, { limit = 101 }) end)
        raises_with("wecom:each_shared_corp: unknown option 'bussiness_type'", function()
            offline:each_shared_corp(function() end, { bussiness_type = 1 }) end)
        raises_with("wecom:each_shared_corp: fn must be a function (got nil)",
            function() offline:each_shared_corp(nil) end)
    end)

    it("token rejects options it does not know", function()
        raises_with("wecom:token: unknown option 'forse'", function() app:token { forse = true } end)
        raises_with("wecom:token: opts.force must be a boolean", function() app:token { force = 1 } end)
        raises_with("wecom:token: opts must be a table", function() app:token "force" end)
    end)
end)

describe("wecom.json_array and wecom.null", function()
    it("are wecom.json's", function()
        local json = require "wecom.json"
        assert.equal(json.array, wecom.json_array)
        assert.equal(json.null, wecom.null)
        assert.equal('{"l":[],"o":{}}', json.encode { l = wecom.json_array(), o = {} })
    end)
end)

describe("wecom.split_userid", function()
    it("splits on the first slash", function()
        local corpid, userid = wecom.split_userid("wwCORP/zhang/san")
        assert.equal("wwCORP", corpid)
        assert.equal("zhang/san", userid)
    end)
    it("returns nil, err for anything else", function()
        for _, bad in ipairs { "nouser", "/u", "ww/", "" } do
            local corpid, err = wecom.split_userid(bad)
            assert.is_nil(corpid)
            assert.is_true(wecom.is_error(err))
        end
    end)
    it("raises for a non-string", function()
        assert.has_error(function() wecom.split_userid(42) end)
    end)
end)

describe("wecom module", function()
    it("exposes the callback module", function()
        assert.equal(require("wecom.callback"), wecom.callback)
    end)
    it("renders its version", function()
        assert.matches("^wecom %d", tostring(wecom))
    end)
end)

describe("wecom.store", function()
    it("makes memory stores", function()
        local store = wecom.store.memory()
        assert.is_function(store.get)
    end)
    it("has no unknown kinds", function()
        assert.is_nil(wecom.store.nosuch)
    end)
end)
