-- wecom.core redis: the RESP formatter and reader (fed crafted bytes) and
-- the blocking connection against a private redis-server.

local core = require "wecom.core"
local redis_server = require "helpers.redis"

local CRLF = "\r\n"

local function bulk(s)
    return "$" .. #s .. CRLF .. s .. CRLF
end

-- The reply of one complete RESP message fed at once.
local function parse(bytes)
    local r = core.redis_reader()
    assert(r:feed(bytes))
    return r:get_reply()
end

describe("core.redis_format", function()
    it("encodes a command as a RESP array of bulk strings", function()
        assert.equal("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
            core.redis_format("SET", "key", "value"))
    end)

    it("is binary safe", function()
        local value = "a\0b\r\nc"
        assert.equal("*2\r\n" .. bulk("ECHO") .. bulk(value), core.redis_format("ECHO", value))
    end)

    it("writes numbers as their decimal text", function()
        assert.equal("*4\r\n" .. bulk("SET") .. bulk("k") .. bulk("42") .. bulk("1.5"),
            core.redis_format("SET", "k", 42, 1.5))
    end)

    it("formats large arguments", function()
        local big = string.rep("x", 3 * 1024 * 1024)
        local out = core.redis_format("SET", "k", big)
        assert.equal("*3\r\n" .. bulk("SET") .. bulk("k") .. bulk(big), out)
    end)

    it("raises on a missing command or an argument of the wrong type", function()
        assert.has_error(function() core.redis_format() end)
        assert.has_error(function() core.redis_format("GET", {}) end)
        assert.has_error(function() core.redis_format("GET", true) end)
        assert.has_error(function() core.redis_format("GET", nil, "x") end)
    end)
end)

describe("core.redis_reader", function()
    it("reads status, integer, bulk and empty bulk replies", function()
        assert.equal("OK", parse("+OK\r\n"))
        assert.equal(42, parse(":42\r\n"))
        assert.equal(-7, parse(":-7\r\n"))
        assert.equal("hello", parse("$5\r\nhello\r\n"))
        assert.equal("", parse("$0\r\n\r\n"))
    end)

    it("reads a nil bulk and a nil array as nil without an error", function()
        for _, bytes in ipairs({ "$-1\r\n", "*-1\r\n" }) do
            local v, err, marker = parse(bytes)
            assert.is_nil(v)
            assert.is_nil(err)
            assert.is_nil(marker)
        end
    end)

    it("returns an error reply as nil, message, 'redis'", function()
        local v, err, marker = parse("-WRONGTYPE Operation against a key\r\n")
        assert.is_nil(v)
        assert.equal("WRONGTYPE Operation against a key", err)
        assert.equal("redis", marker)
    end)

    it("reads nested arrays with nil and error elements", function()
        local bytes = "*3\r\n*2\r\n:1\r\n$-1\r\n-ERR inner\r\n*0\r\n"
        assert.same({ { 1, false }, { err = "ERR inner" }, {} }, parse(bytes))
    end)

    it("reads arrays nested seven deep and reports deeper ones as protocol errors", function()
        local seven = parse(string.rep("*1\r\n", 7) .. ":5\r\n")
        for _ = 1, 7 do seven = seven[1] end
        assert.equal(5, seven)
        local v, err, marker = parse(string.rep("*1\r\n", 9) .. ":5\r\n")
        assert.is_nil(v)
        assert.matches("depth", err)
        assert.equal("protocol", marker)
    end)

    it("says false until a reply is complete when fed byte by byte", function()
        local bytes = "*2\r\n" .. bulk("a\r\nb") .. ":12345\r\n"
        local r = core.redis_reader()
        for i = 1, #bytes - 1 do
            assert(r:feed(bytes:sub(i, i)))
            assert.is_false(r:get_reply())
        end
        assert(r:feed(bytes:sub(-1)))
        assert.same({ "a\r\nb", 12345 }, r:get_reply())
        assert.is_false(r:get_reply())
    end)

    it("yields several replies from one feed in order", function()
        local r = core.redis_reader()
        assert(r:feed("+OK\r\n:1\r\n$3\r\nabc\r\n-ERR x\r\n$-1\r\n+PART"))
        assert.equal("OK", r:get_reply())
        assert.equal(1, r:get_reply())
        assert.equal("abc", r:get_reply())
        local v, err = r:get_reply()
        assert.is_nil(v)
        assert.equal("ERR x", err)
        v, err = r:get_reply()
        assert.is_nil(v)
        assert.is_nil(err)
        assert.is_false(r:get_reply())   -- "+PART" has no CRLF yet
        assert(r:feed("IAL\r\n"))
        assert.equal("PARTIAL", r:get_reply())
    end)

    it("reads a big binary bulk string fed in chunks", function()
        local parts = {}
        for i = 0, 255 do parts[#parts + 1] = string.char(i) end
        local big = string.rep(table.concat(parts), 4 * 1024 + 3)   -- just over 1 MiB
        local bytes = bulk(big)
        local r = core.redis_reader()
        local pos, got = 1, false
        while pos <= #bytes do
            assert.is_false(got)
            assert(r:feed(bytes:sub(pos, pos + 65535)))
            pos = pos + 65536
            got = r:get_reply()
        end
        assert.equal(#big, #got)
        assert.equal(big, got)
    end)

    it("reports a protocol error and stays failed", function()
        local r = core.redis_reader()
        assert(r:feed("?what\r\n"))
        local v, err, marker = r:get_reply()
        assert.is_nil(v)
        assert.matches("protocol error", err)
        assert.equal("protocol", marker)
        v, err, marker = r:feed("+OK\r\n")
        assert.is_nil(v)
        assert.is_string(err)
        assert.equal("protocol", marker)
        assert.is_nil((r:get_reply()))
    end)

    it("rejects a malformed length", function()
        local v, err, marker = parse("$abc\r\n")
        assert.is_nil(v)
        assert.is_string(err)
        assert.equal("protocol", marker)
    end)

    it("closes idempotently and raises when used after close", function()
        local r = core.redis_reader()
        assert.matches("redis_reader", tostring(r))
        r:close()
        r:close()
        assert.matches("closed", tostring(r))
        assert.has_error(function() r:feed("+OK\r\n") end)
        assert.has_error(function() r:get_reply() end)
        assert.has_error(function() r:feed() end)
    end)
end)

describe("core.redis_connect", function()
    local srv

    setup(function()
        srv = redis_server.start{ password = "sp3c-pass-word" }
    end)

    teardown(function()
        if srv then srv:destroy() end
    end)

    it("raises on options of the wrong type", function()
        assert.has_error(function() core.redis_connect() end)
        assert.has_error(function() core.redis_connect{ port = "6379" } end)
        assert.has_error(function() core.redis_connect{ port = 70000 } end)
        assert.has_error(function() core.redis_connect{ timeout = -1 } end)
        assert.has_error(function() core.redis_connect{ password = 12 } end)
        assert.has_error(function() core.redis_connect{ db = 1.5 } end)
    end)

    it("returns nil, err, 'io' when nothing listens", function()
        local conn, err, marker = core.redis_connect{ host = "127.0.0.1", port = 1, timeout = 0.5 }
        assert.is_nil(conn)
        assert.matches("127.0.0.1:1", err, 1, true)
        assert.equal("io", marker)
    end)

    it("runs commands and maps every reply type", function()
        local conn = assert(srv:connect())
        local value = "bin\0ary\r\n" .. string.rep("v", 100000)
        assert.equal("OK", conn:command("SET", "unit:k", value))
        assert.equal(value, conn:command("GET", "unit:k"))
        assert.equal(1, conn:command("DEL", "unit:k"))
        local v, err = conn:command("GET", "unit:k")
        assert.is_nil(v)
        assert.is_nil(err)
        assert.equal(5, conn:command("INCRBY", "unit:n", 5))
        assert.same({ "5", false }, conn:command("MGET", "unit:n", "unit:missing"))
        local res, msg, marker = conn:command("NOSUCHCOMMAND", "x")
        assert.is_nil(res)
        assert.matches("^ERR unknown command", msg)
        assert.equal("redis", marker)
        conn:close()
    end)

    it("returns error elements inside an array (EXEC)", function()
        local conn = assert(srv:connect())
        assert.equal("OK", conn:command("SET", "unit:s", "text"))
        assert.equal("OK", conn:command("MULTI"))
        assert.equal("QUEUED", conn:command("SET", "unit:t", "1"))
        assert.equal("QUEUED", conn:command("INCR", "unit:s"))
        local res = conn:command("EXEC")
        assert.equal("OK", res[1])
        assert.matches("not an integer", res[2].err)
        conn:close()
    end)

    it("runs EVAL scripts with keys and arguments", function()
        local conn = assert(srv:connect())
        local script = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) * 2}"
        assert.same({ "k", "a", 42 }, conn:command("EVAL", script, 1, "k", "a", 21))
        conn:close()
    end)

    it("rejects a wrong password without revealing it", function()
        local conn, err, marker = srv:connect{ password = "not-the-right-one" }
        assert.is_nil(conn)
        assert.equal("io", marker)
        assert.matches("AUTH failed", err)
        assert.is_nil(err:find("not-the-right-one", 1, true))
        assert.is_nil(err:find(srv.password, 1, true))
    end)

    it("gets NOAUTH without a password", function()
        local conn = assert(core.redis_connect{ port = srv.port })
        local v, err, marker = conn:command("GET", "x")
        assert.is_nil(v)
        assert.matches("NOAUTH", err)
        assert.equal("redis", marker)
        conn:close()
    end)

    it("selects the db", function()
        local one = assert(srv:connect{ db = 1 })
        local zero = assert(srv:connect())
        assert.equal("OK", one:command("SET", "unit:db", "in-one"))
        assert.equal("in-one", one:command("GET", "unit:db"))
        assert.is_nil((zero:command("GET", "unit:db")))
        one:close()
        zero:close()
        local v, err = srv:connect{ db = 99 }
        assert.is_nil(v)
        assert.matches("SELECT failed", err)
    end)

    it("times out a command that takes longer than the timeout", function()
        local conn = assert(srv:connect{ timeout = 0.2 })
        local v, err, marker = conn:command("BLPOP", "unit:never", 3)
        assert.is_nil(v)
        assert.is_string(err)
        assert.equal("io", marker)
        assert.is_false(conn:connected())
        conn:close()
    end)

    it("closes idempotently, raises after close, never shows the password", function()
        local conn = assert(srv:connect())
        assert.is_true(conn:connected())
        assert.matches("127.0.0.1:" .. srv.port, tostring(conn), 1, true)
        assert.is_nil(tostring(conn):find(srv.password, 1, true))
        conn:close()
        conn:close()
        assert.is_false(conn:connected())
        assert.matches("closed", tostring(conn))
        assert.has_error(function() conn:command("PING") end)
    end)

    it("raises on command arguments of the wrong type", function()
        local conn = assert(srv:connect())
        assert.has_error(function() conn:command() end)
        assert.has_error(function() conn:command("GET", {}) end)
        conn:close()
    end)

    if _VERSION == "Lua 5.4" then
        it("closes as a to-be-closed variable", function()
            local conn = assert(srv:connect())
            local run = assert(load([[
                local conn = ...
                do local c <close> = conn end
                return conn:connected()
            ]]))
            assert.is_false(run(conn))
        end)
    end

    it("reports a server restart as an I/O error, then a new connection works", function()
        local conn = assert(srv:connect())
        assert.equal("PONG", conn:command("PING"))
        srv:restart()
        local v, err, marker = conn:command("PING")
        assert.is_nil(v)
        assert.matches("closed", err)
        assert.equal("io", marker)
        assert.is_false(conn:connected())
        -- later calls on the broken connection fail the same way, without I/O
        v, err, marker = conn:command("PING")
        assert.is_nil(v)
        assert.matches("127.0.0.1:" .. srv.port, err, 1, true)
        assert.equal("io", marker)
        conn:close()
        conn = assert(srv:connect())
        assert.equal("PONG", conn:command("PING"))
        conn:close()
    end)

    it("survives writing to a connection the server dropped (no SIGPIPE)", function()
        -- a big write to a socket whose peer is gone raises SIGPIPE unless
        -- the core blocks it; run it in a child so a death is visible
        local interp = require("helpers.child").interpreter
        local script = os.tmpname()
        local f = assert(io.open(script, "w"))
        f:write(([[
            local core = require "wecom.core"
            local c = assert(core.redis_connect{ port = %d, password = %q })
            local killer = assert(core.redis_connect{ port = %d, password = %q })
            local id = c:command("CLIENT", "ID")
            assert(killer:command("CLIENT", "KILL", "ID", id) == 1)
            local big = string.rep("x", 8 * 1024 * 1024)
            for _ = 1, 3 do
                local v, err, marker = c:command("SET", "k", big)
                assert(v == nil and marker == "io", err)
            end
            io.write("alive")
        ]]):format(srv.port, srv.password, srv.port, srv.password))
        f:close()
        local p = assert(io.popen(interp .. " " .. script .. " 2>&1"))
        local out = p:read("*a")
        p:close()
        os.remove(script)
        assert.equal("alive", out)
    end)
end)
