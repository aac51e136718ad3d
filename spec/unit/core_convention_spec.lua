-- The one failure convention of wecom.core (src/wecom.h), over every
-- function: a bad argument raises "<the call as Lua writes it>: <what was
-- wrong>"; a runtime failure returns nil, message [, code [, detail]].
local core = require "wecom.core"
local socket = require "socket"

local KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"

local function closed_port()
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    server:close()
    return tonumber(port)
end

-- The message a call raises, without the position luassert strips too.
local function raised(fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "did not raise")
    assert.is_string(err)
    return (err:gsub("^[^:]*:%d+: ", ""))
end

describe("wecom.core failure convention", function()
    local crypter = core.crypter("token", KEY)
    local session = core.http_session()
    local reader = core.redis_reader()
    local dir = os.tmpname()
    os.remove(dir)
    assert(core.mkdir(dir))
    local lock = assert(core.flock_open(dir .. "/lock"))

    teardown(function()
        lock:close()
        os.remove(dir .. "/lock")
        os.remove(dir)
    end)

    -- one bad call per function (and method), with the exact message
    local bad_calls = {
        crypter = { function() return core.crypter(nil, KEY) end,
                    "wecom.core.crypter: token must be a string (got nil)" },
        sha1_hex = { function() return core.sha1_hex(42) end,
                     "wecom.core.sha1_hex: s must be a string (got number 42)" },
        jsapi_signature = { function() return core.jsapi_signature("t", "n", -1, "u") end,
                            "wecom.core.jsapi_signature: timestamp must be an integer in [0, 9007199254740992] "
                            .. "(got number -1)" },
        base64_encode = { function() return core.base64_encode({}) end,
                          "wecom.core.base64_encode: s must be a string (got table)" },
        base64_decode = { function() return core.base64_decode() end,
                          "wecom.core.base64_decode: s must be a string (got no value)" },
        random_bytes = { function() return core.random_bytes(-1) end,
                         "wecom.core.random_bytes: n must be an integer in [0, 1048576] (got number -1)" },
        nonce = { function() return core.nonce(2000) end,
                  "wecom.core.nonce: n must be an integer in [1, 1024] (got number 2000)" },
        const_eq = { function() return core.const_eq("a", nil) end,
                     "wecom.core.const_eq: b must be a string (got nil)" },
        callback_open = { function() return core.callback_open("x", "s", "t", "n", "b") end,
                          "wecom.core.callback_open: expected a wecom.core.crypter (got string)" },
        callback_open_query = { function() return core.callback_open_query("x", "q", "b") end,
                                "wecom.core.callback_open_query: expected a wecom.core.crypter (got string)" },
        callback_plaintext = { function() return core.callback_plaintext("x") end,
                               "wecom.core.callback_plaintext: box must be a plaintext box from callback_open"
                               .. " (got string)" },
        xml_decode = { function() return core.xml_decode("<x/>", { max_size = "big" }) end,
                       "wecom.core.xml_decode: opts.max_size must be an integer in [0, 2147483647] (got string)" },
        http_session = { function() return core.http_session{ max_connections = 0 } end,
                         "wecom.core.http_session: opts.max_connections must be an integer in [1, 10000] "
                         .. "(got number 0)" },
        sleep = { function() return core.sleep(-1) end,
                  "wecom.core.sleep: seconds must be a number of seconds in [0, 86400] (got number -1)" },
        token_get = { function() return core.token_get("") end,
                      "wecom.core.token_get: key must be a string of 1..1024 bytes (got empty string)" },
        token_set = { function() return core.token_set("k", "v", "later") end,
                      "wecom.core.token_set: expires_at must be a finite number (seconds since the epoch) "
                      .. "(got string)" },
        token_delete = { function() return core.token_delete("k", 1) end,
                         "wecom.core.token_delete: only_if_value must be a string (got number 1)" },
        token_lock = { function() return core.token_lock("k", 0) end,
                       "wecom.core.token_lock: lease_seconds must be a number of seconds in (0, 86400] "
                       .. "(got number 0)" },
        token_unlock = { function() return core.token_unlock("k", "owner") end,
                         "wecom.core.token_unlock: owner must be a number (from token_lock) (got string)" },
        redis_connect = { function() return core.redis_connect{ port = 70000 } end,
                          "wecom.core.redis_connect: opts.port must be an integer in [1, 65535] (got number 70000)" },
        redis_format = { function() return core.redis_format("GET", true) end,
                         "wecom.core.redis_format: argument #2 must be a string or a number (got boolean)" },
        flock_open = { function() return core.flock_open("") end,
                       "wecom.core.flock_open: path must be 1..4000 bytes without NUL (got empty string)" },
        write_atomic = { function() return core.write_atomic(dir .. "/f", nil) end,
                         "wecom.core.write_atomic: data must be a string (got nil)" },
        mkdir = { function() return core.mkdir(dir, 65536) end,
                  "wecom.core.mkdir: mode must be an integer in [0, 4095] (got number 65536)" },
        token_set_durable = { function() return core.token_set_durable("", "v") end,
                              "wecom.core.token_set_durable: key must be a string of 1..1024 bytes"
                                  .. " (got empty string)" },
        token_list_durable = { function() return core.token_list_durable(nil) end,
                               "wecom.core.token_list_durable: prefix must be a string (got nil)" },
        list_dir = { function() return core.list_dir("", ".keep") end,
                     "wecom.core.list_dir: path must be 1..4000 bytes without NUL (got empty string)" },
        private_dir = { function() return core.private_dir(nil) end,
                        "wecom.core.private_dir: path must be a string (got nil)" },
        read_regular = { function() return core.read_regular(nil, 10) end,
                         "wecom.core.read_regular: path must be a string (got nil)" },
        flock_open_nofollow = { function() return core.flock_open_nofollow(nil) end,
                                "wecom.core.flock_open_nofollow: path must be a string (got nil)" },
        ["crypter:decrypt"] = { function() return crypter:decrypt(nil) end,
                                "wecom.core.crypter:decrypt: encrypt must be a string (got nil)" },
        ["crypter:open"] = { function() return crypter:open("s", "t", "n") end,
                             "wecom.core.crypter:open: encrypt must be a string (got no value)" },
        ["crypter:verify"] = { function() return crypter.verify(session, "s", "t", "n", "e") end,
                               "wecom.core.crypter:verify: expected a wecom.core.crypter (got userdata)" },
        ["crypter:signature"] = { function() return crypter:signature("t", "n") end,
                                  "wecom.core.crypter:signature: encrypt must be a string (got no value)" },
        ["crypter:encrypt"] = { function() return crypter:encrypt("m", 1) end,
                                "wecom.core.crypter:encrypt: receive_id must be a string (got number 1)" },
        ["http_session:request"] = { function() return session:request{ url = "https://x/", timeout = -1 } end,
                                     "wecom.core.http_session:request: req.timeout must be a number of seconds "
                                     .. "in (0, 86400] (got number -1)" },
        ["http_session:submit"] = { function() return session:submit{ url = "https://x/", body = 1 } end,
                                    "wecom.core.http_session:submit: req.body must be a string (got number 1)" },
        ["http_session:poll"] = { function() return session:poll("soon") end,
                                  "wecom.core.http_session:poll: timeout must be a number of seconds in [0, 86400] "
                                  .. "(got string)" },
        ["redis_reader:feed"] = { function() return reader:feed(false) end,
                                  "wecom.core.redis_reader:feed: bytes must be a string (got boolean)" },
        ["flock:lock"] = { function() return lock:lock(true, "long") end,
                           "wecom.core.flock:lock: timeout must be a number of seconds up to 86400 "
                           .. "(negative: no limit) (got string)" },
    }

    for name, case in pairs(bad_calls) do
        local fn_name = name:match("^[%w_]+$")
        if not fn_name or core[fn_name] ~= nil then
            it("raises for a bad argument to " .. name .. ", naming the call", function()
                assert.equal(case[2], raised(case[1]))
            end)
        end
    end

    it("covers every function that takes arguments", function()
        local no_arguments = { now = true, monotonic = true, getpid = true, redis_reader = true }
        for name, value in pairs(core) do
            if type(value) == "function" and not no_arguments[name] then
                assert.is_table(bad_calls[name], name .. " has no bad-argument case here")
            end
        end
    end)

    it("raises for a closed object, naming the call", function()
        local c = core.crypter("token", KEY)
        c:close()
        assert.equal("wecom.core.crypter:encrypt: attempt to use a closed crypter", raised(c.encrypt, c, "m", "r"))
        local s = core.http_session()
        s:close()
        assert.equal("wecom.core.http_session:submit: attempt to use a closed http session",
                     raised(s.submit, s, { url = "https://x/" }))
        local r = core.redis_reader()
        r:close()
        assert.equal("wecom.core.redis_reader:get_reply: attempt to use a closed redis reader",
                     raised(r.get_reply, r))
        local l = assert(core.flock_open(dir .. "/lock2"))
        l:close()
        os.remove(dir .. "/lock2")
        assert.equal("wecom.core.flock:unlock: attempt to use a closed file lock", raised(l.unlock, l))
    end)

    it("never shows a string argument's content in the message", function()
        local secret = "S3CRET-" .. core.nonce(20)
        local message = raised(core.crypter, "token", secret)
        assert.is_nil(message:find(secret, 1, true))
        message = raised(core.http_session, { ca_file = secret .. "\0" })
        assert.is_nil(message:find("S3CRET", 1, true))
        message = raised(core.token_get, secret:rep(100))
        assert.is_nil(message:find("S3CRET", 1, true))
    end)

    describe("runtime failures return nil, message [, code [, detail]]", function()
        local function shape(n, ...)
            assert.equal(n, select("#", ...))
            assert.is_nil((...))
            assert.is_string((select(2, ...)))
            return select(2, ...)
        end

        it("crypter methods: the WXBizMsgCrypt code", function()
            local _, code = shape(3, crypter:decrypt("!!!!"))
            assert.equal(-40010, code)
            _, code = shape(3, crypter:open("0", "1", "2", "AAAA"))
            assert.equal(-40001, code)
            local sig = crypter:signature("1", "2", "AAAA")
            _, code = shape(3, core.callback_open(crypter, sig, "1", "2", "<xml><Encrypt>AAAA</Encrypt></xml>"))
            assert.equal(-40007, code)
        end)

        it("http_session:request: kind and libcurl's code", function()
            local message, kind, curl_code = shape(4, session:request{
                url = "https://127.0.0.1:" .. closed_port() .. "/" })
            assert.matches("onnect", message)
            assert.equal("transport", kind)
            assert.equal(7, curl_code)
        end)

        it("redis: the kind of failure", function()
            local _, kind = shape(3, core.redis_connect{ port = closed_port(), timeout = 1 })
            assert.equal("io", kind)
            local r = core.redis_reader()
            assert.is_true(r:feed("?bad\r\n"))
            _, kind = shape(3, r:get_reply())
            assert.equal("protocol", kind)
        end)

        it("the others: just the message", function()
            shape(2, core.base64_decode("A"))
            shape(2, core.xml_decode("<a>"))
            shape(2, core.write_atomic(dir .. "/missing/f", "x"))
            shape(2, core.flock_open(dir .. "/missing/lock"))
            shape(2, core.mkdir(dir .. "/missing/d"))
        end)

        it("answers that are not failures stay plain values", function()
            assert.is_false(crypter:verify("0", "1", "2", "3"))
            assert.is_nil(core.token_get("wecom-convention-spec-miss"))
            assert.is_false(core.callback_open(crypter, "s", "t", "n", "{}"))
            assert.is_false(core.redis_reader():get_reply())
        end)
    end)
end)
