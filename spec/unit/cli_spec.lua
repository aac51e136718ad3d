-- The plumbing of bin/wecom (wecom.cli.*) without a server: argument
-- parsing, CSV, table widths, secret scrubbing, the INI config file and its
-- permission check, captured-callback files, main's exit statuses.

local args = require "wecom.cli.args"
local csv = require "wecom.cli.csv"
local output = require "wecom.cli.output"
local config = require "wecom.cli.config"
local callback = require "wecom.cli.callback"
local chain = require "wecom.cli.chain"
local cli = require "wecom.cli"
local sh = require "helpers.sh"

local function usage_message(fn)
    local ok, e = pcall(fn)
    assert.is_false(ok)
    assert.is_true(args.is_usage_error(e), tostring(e))
    return e.message
end

-- a writer that keeps what it was given
local function sink()
    local t = { parts = {} }
    function t.write(_, ...)
        for _, s in ipairs { ... } do
            t.parts[#t.parts + 1] = s
        end
    end
    function t.flush() end
    function t.text() return table.concat(t.parts) end
    return t
end

describe("wecom.cli.args", function()
    local spec = {
        format = { value = "FORMAT", check = args.one_of { "table", "json" } },
        user = { value = "ID", many = true },
        quiet = { short = "q" },
        n = { value = "N", check = args.integer(1, 9) },
    }

    it("reads --name value, --name=value, flags, repeats and positional arguments in any order", function()
        local opts, pos = args.parse({ "a", "--format", "json", "--user=x", "-q", "b", "--user", "y", "--n=3" },
            1, spec)
        assert.same({ format = "json", user = { "x", "y" }, quiet = true, n = 3 }, opts)
        assert.same({ "a", "b" }, pos)
    end)

    it("stops at the first word when asked (the global options before the command)", function()
        local opts, pos, i = args.parse({ "-q", "corps", "--format", "json" }, 1, spec, true)
        assert.same({ quiet = true }, opts)
        assert.same({}, pos)
        assert.equal(2, i)
    end)

    it("takes everything after -- as words", function()
        local _, pos = args.parse({ "--", "--format", "-q" }, 1, spec)
        assert.same({ "--format", "-q" }, pos)
    end)

    it("refuses unknown options, missing values, values of flags and bad values", function()
        assert.matches("unknown option %-%-nope", usage_message(function() args.parse({ "--nope" }, 1, spec) end))
        assert.matches("unknown option %-x", usage_message(function() args.parse({ "-x" }, 1, spec) end))
        assert.matches("%-%-format needs a value", usage_message(function() args.parse({ "--format" }, 1, spec) end))
        assert.matches("%-%-quiet takes no value", usage_message(function()
            args.parse({ "--quiet=1" }, 1, spec)
        end))
        assert.matches("%-%-format must be one of table, json %(got 'xml'%)", usage_message(function()
            args.parse({ "--format", "xml" }, 1, spec)
        end))
        assert.matches("%-%-n must be an integer in 1..9", usage_message(function()
            args.parse({ "--n", "10" }, 1, spec)
        end))
    end)
end)

describe("wecom.cli.csv", function()
    it("reads quoted fields with commas, quotes, newlines; CRLF; a BOM; blank lines", function()
        local rows = assert(csv.rows('\239\187\191a,b\r\n"x,1","say ""hi"""\r\n\r\n"two\nlines",\n'))
        assert.same({ "a", "b" }, { rows[1][1], rows[1][2] })
        assert.same({ "x,1", 'say "hi"' }, { rows[2][1], rows[2][2] })
        assert.same({ "two\nlines", "" }, { rows[3][1], rows[3][2] })
        assert.equal(3, #rows)
        assert.equal(4, rows[3].line)
    end)

    it("names the line of a broken file", function()
        assert.same({ nil, "line 2: a quoted field is not closed" }, { csv.rows('a\n"open\n') })
        assert.same({ nil, "line 1: text after a closing quote" }, { csv.rows('"a"b\n') })
        assert.same({ nil, "line 2: a quote inside an unquoted field" }, { csv.rows('a\nb"c\n') })
    end)

    it("maps records by the header (trimmed, lower case) and refuses rows longer than it", function()
        local recs, cols = csv.records("UnionID , openid\n u1 ,o1\nu2\n")
        assert.same({ "unionid", "openid" }, cols)
        assert.same({ unionid = "u1", openid = "o1", line = 2 }, recs[1])
        assert.same({ unionid = "u2", openid = "", line = 3 }, recs[2])
        assert.same({ nil, "line 2: 3 fields, the header has 2" }, { csv.records("a,b\n1,2,3\n") })
        assert.same({ nil, "line 1: column 'a' appears twice" }, { csv.records("a,A\n") })
        assert.is_nil((csv.records("")))
    end)

    it("quotes what needs quoting when writing", function()
        assert.equal('a,"b,c","say ""x""","l1\nl2",\n', csv.line { "a", "b,c", 'say "x"', "l1\nl2", "" })
    end)
end)

describe("wecom.cli.output", function()
    it("counts CJK characters as two columns", function()
        assert.equal(4, output.width("abcd"))
        assert.equal(8, output.width("经销商网"))
        assert.equal(6, output.width("（a）x"))
    end)

    it("aligns tables by display width and prints integers without a decimal point", function()
        local out, err = sink(), sink()
        local o = output.new { format = "table", stdout = out, stderr = err }
        o:rows({ { id = "wwA", name = "经销商", n = 1000002.0 }, { id = "wwLONGER", name = "ab" } },
            { { "id" }, { "name" }, { "n" } })
        assert.equal("id        name    n\nwwA       经销商  1000002\nwwLONGER  ab\n", out.text())
    end)

    it("writes JSON one record per line, CSV with a header", function()
        local out = sink()
        output.new { format = "json", stdout = out, stderr = sink() }:rows({ { a = 1 }, { a = 2, b = "x" } }, {})
        assert.equal('[\n{"a":1},\n{"a":2,"b":"x"}\n]\n', out.text())
        out = sink()
        output.new { format = "csv", stdout = out, stderr = sink() }:rows({ { a = 1, b = true } },
            { { "a" }, { "b" } })
        assert.equal("a,b\n1,true\n", out.text())
    end)

    it("never writes a secret it was told about, on either stream", function()
        local out, err = sink(), sink()
        local o = output.new { format = "table", stdout = out, stderr = err, secrets = { "S3cretValue" } }
        o:secret("tok123456")
        o:secret("abc")    -- too short to redact safely: ordinary words would vanish
        o:write("x S3cretValue y S3cretValue\n")
        o:note("token tok123456 abc")
        assert.equal("x [REDACTED] y [REDACTED]\n", out.text())
        assert.equal("token [REDACTED] abc\n", err.text())
    end)

    it("draws a progress bar only when asked to", function()
        local err = sink()
        local bar = output.new { stdout = sink(), stderr = err, progress = false }:progress(3, "x")
        bar:step(); bar:done()
        assert.equal("", err.text())
        bar = output.new { stdout = sink(), stderr = err, progress = true }:progress(2, "x")
        bar:step(); bar:step(); bar:done()
        assert.matches("x %[#+%] 2/2 100%%\n$", err.text())
    end)
end)

describe("wecom.cli.config", function()
    local dir
    before_each(function()
        dir = sh.tmpdir("wecom-cli-config")
    end)
    after_each(function()
        os.execute("rm -rf " .. sh.quote(dir))
    end)

    local function env(t)
        return function(name) return t[name] end
    end

    it("reads profiles; keys before a section are [default]; quotes keep spaces", function()
        local s = config.parse_ini("# c\ncorpid = wwA\n[emu]\n; c\nbase_url = https://localhost:1\nx = ' a '\n", "f")
        assert.same({ default = { corpid = "wwA" }, emu = { base_url = "https://localhost:1", x = " a " } }, s)
        local ok, e = pcall(config.parse_ini, "corpid\n", "f")
        assert.is_false(ok)
        assert.equal("f:1: expected `key = value` or `[profile]`", e.message)
    end)

    it("takes flags over WECOM_* over the file, never the secret from a flag", function()
        local path = dir .. "/config"
        sh.write_file(path, "corpid = wwFILE\nagentid = 7\nsecret = filesecret\n[other]\ncorpid = wwOTHER\n")
        os.execute("chmod 600 " .. sh.quote(path))
        local s = config.load({ config = path, corpid = "wwFLAG", secret = "flag" },
            env { WECOM_CORPID = "wwENV", WECOM_AGENTID = "9" })
        assert.equal("wwFLAG", s.corpid)
        assert.equal(9, s.agentid)
        assert.equal("filesecret", s.secret)
        s = config.load({ config = path, profile = "other" }, env {})
        assert.equal("wwOTHER", s.corpid)
        local ok, e = pcall(config.load, { config = path, profile = "nope" }, env {})
        assert.is_false(ok)
        assert.matches("has no %[nope%] profile", e.message)
    end)

    it("refuses a file with a secret that others can read, and says how to fix it", function()
        local path = dir .. "/config"
        sh.write_file(path, "secret = s3cr3t-value\n")
        os.execute("chmod 644 " .. sh.quote(path))
        local ok, e = pcall(config.load, { config = path }, env {})
        assert.is_false(ok)
        assert.is_true(config.is_config_error(e))
        assert.equal(path .. " holds a secret and others can read it (mode 644): run chmod 600 " .. path, e.message)
        assert.not_matches("s3cr3t", e.message)
        os.execute("chmod 600 " .. sh.quote(path))
        assert.equal("s3cr3t-value", config.load({ config = path }, env {}).secret)
        -- no secret in it: any mode will do
        sh.write_file(path, "corpid = wwA\n")
        os.execute("chmod 644 " .. sh.quote(path))
        assert.equal("wwA", config.load({ config = path }, env {}).corpid)
    end)

    it("finds the file under XDG_CONFIG_HOME, else ~/.config; a missing default file is fine", function()
        assert.equal("/x/wecom/config", (config.default_path(env { XDG_CONFIG_HOME = "/x", HOME = "/h" })))
        assert.equal("/h/.config/wecom/config", (config.default_path(env { HOME = "/h" })))
        assert.equal("/e", (config.default_path(env { WECOM_CONFIG = "/e", HOME = "/h" })))
        local s = config.load({}, env { HOME = dir, WECOM_CORPID = "wwX" })
        assert.equal("wwX", s.corpid)
        local ok, e = pcall(config.load, { config = dir .. "/missing" }, env {})
        assert.is_false(ok)
        assert.matches("cannot read the config file", e.message)
    end)

    it("puts the token store under XDG_CACHE_HOME, else ~/.cache, creating the parents", function()
        local d = config.token_dir({}, env { HOME = dir })
        assert.equal(dir .. "/.cache/wecom/tokens", d)
        assert.equal("700", sh.mode(dir .. "/.cache/wecom"))
        assert.equal("/t", config.token_dir({ token_dir = "/t" }, env {}))
    end)
end)

describe("wecom.cli.callback.split_capture", function()
    it("reads a raw HTTP request", function()
        local q, b = callback.split_capture("POST /cb?msg_signature=s&timestamp=1&nonce=2 HTTP/1.1\r\n"
            .. "Host: x\r\nContent-Length: 4\r\n\r\n<xml")
        assert.equal("msg_signature=s&timestamp=1&nonce=2", q)
        assert.equal("<xml", b)
    end)

    it("reads a URL or a query string on the first line and the body after it", function()
        assert.same({ "a=1", "body\nmore" }, { callback.split_capture("https://x/cb?a=1\nbody\nmore") })
        assert.same({ "a=1&b=2", "" }, { callback.split_capture("a=1&b=2") })
    end)
end)

describe("wecom.cli.chain helpers", function()
    it("orders a group tree like the admin console and names each group's path", function()
        local nodes = chain.tree {
            { groupid = 2, group_name = "北", parentid = 1, order = 1 },
            { groupid = 3, group_name = "南", parentid = 1, order = 5 },
            { groupid = 4, group_name = "京", parentid = 2, order = 0 },
            { groupid = 9, group_name = "孤", parentid = 99, order = 0 },   -- parent not visible
        }
        local ids = {}
        for _, child in ipairs(nodes[1].children) do
            ids[#ids + 1] = child.group.groupid
        end
        assert.same({ 3, 2, 9 }, ids)
        assert.same({ [1] = "", [2] = "北", [3] = "南", [4] = "北/京", [9] = "孤" }, chain.paths(nodes))
    end)

    it("reads a rate as a budget window: calls per second, minute or hour", function()
        assert.same({ 1, 25 }, chain.rate("25"))
        assert.same({ 1, 25 }, chain.rate("25/s"))
        assert.same({ 60, 120 }, chain.rate("120/m"))
        assert.same({ 3600, 90000 }, chain.rate("90000/h"))
        assert.is_nil(chain.rate("0"))
        assert.is_nil(chain.rate("2.5/s"))
        assert.is_nil(chain.rate("fast"))
    end)
end)

describe("wecom.cli.main", function()
    local function main(argv, getenv)
        local out, err = sink(), sink()
        local status = cli.main(argv, { getenv = getenv or function() end, stdout = out, stderr = err,
                                        stdin = io.stdin, isatty = function() return false end })
        return status, out.text(), err.text()
    end

    it("answers --help for the command line and every command on stdout with status 0", function()
        local status, out = main { "--help" }
        assert.equal(0, status)
        assert.matches("usage: wecom %[OPTIONS%] COMMAND", out)
        for _, cmd in ipairs(cli.commands()) do
            local s, o, e = main { cmd.name, "--help" }
            assert.equal(0, s, cmd.name)
            assert.equal("", e)
            assert.equal("usage: " .. cmd.usage, o:match("^[^\n]+"))
            s, o = main { "help", cmd.name }
            assert.equal(0, s)
            assert.matches("^usage: ", o)
        end
    end)

    it("exits 2 for a usage error, with the command's usage line", function()
        local status, out, err = main { "corps", "--bogus" }
        assert.equal(2, status)
        assert.equal("", out)
        assert.matches("^wecom corps: unknown option %-%-bogus\nusage: wecom corps ", err)
        assert.equal(2, (main { "nosuch" }))
        assert.equal(2, (main { "groups" }))           -- CHAIN_ID missing
        assert.equal(2, (main { "chains", "extra" }))
        assert.equal(2, (main {}))
        -- an empty string is no chain id, no corp id
        assert.equal(2, (main { "groups", "" }))
        local s, _, e = main { "corps", "--chain=" }
        assert.equal(2, s)
        assert.matches("%-%-chain needs a value %(CHAIN_ID%), not an empty string", e)
    end)

    it("exits 3 when the credentials are missing, naming where they come from", function()
        local status, _, err = main({ "chains" }, function(name)
            return ({ HOME = "/nonexistent", WECOM_CORPID = "wwA" })[name]
        end)
        assert.equal(3, status)
        assert.matches("secret is not set %(WECOM_SECRET, `secret =` in the config file%)", err)
    end)

    it("exits 4 for an unreadable input file", function()
        local status, _, err = main({ "import", "Ch", "/nonexistent.csv", "--dry-run" })
        assert.equal(4, status)
        assert.matches("^wecom import: cannot read /nonexistent%.csv", err)
    end)

    it("has one exit status per error kind", function()
        local errors = require "wecom.errors"
        local seen = {}
        for kind in pairs(errors.KINDS) do
            local code = cli.EXIT[kind]
            assert.is_number(code, kind)
            assert.is_nil(seen[code], kind)
            seen[code] = true
        end
    end)
end)
