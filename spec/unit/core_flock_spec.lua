-- wecom.core flock_open / write_atomic: file locks between processes and
-- atomic replacement of a file.

local core = require "wecom.core"
local child = require "helpers.child"
local sh = require "helpers.sh"

local read_file = sh.read_file

local function tmpdir()
    return sh.tmpdir("wecom-flock")
end

local function ls(dir)
    local p = assert(io.popen("ls -A " .. child.quote(dir)))
    local names = {}
    for name in p:lines() do names[#names + 1] = name end
    p:close()
    table.sort(names)
    return names
end

-- every test of the file gets a fresh temporary directory
local dir

before_each(function() dir = tmpdir() end)
after_each(function() os.execute("rm -rf " .. child.quote(dir)) end)

-- a child process that takes path's lock, says so, holds it for seconds
-- and releases it -> the child, and our handle on the lock it holds
local function held_elsewhere(path, seconds)
    local p = child.spawn([[
        local core = require "wecom.core"
        local lk = assert(core.flock_open(arg[1]))
        assert(lk:lock(true, 5))
        io.write("locked\n"); io.flush()
        core.sleep(tonumber(arg[2]))
        lk:unlock()
    ]], { path, seconds })
    assert.equal("locked", p:line())
    local lk = assert(core.flock_open(path))
    assert.is_false(lk:lock(true, 0))
    return p, lk
end

describe("core.flock_open", function()
    it("raises on a path of the wrong type or shape", function()
        assert.has_error(function() core.flock_open() end)
        assert.has_error(function() core.flock_open(12) end)
        assert.has_error(function() core.flock_open("") end)
        assert.has_error(function() core.flock_open(dir .. "/a\0b") end)
    end)

    it("returns nil, err naming the path when the directory is missing", function()
        local lk, err = core.flock_open(dir .. "/missing/x.lock")
        assert.is_nil(lk)
        assert.matches(dir .. "/missing/x.lock", err, 1, true)
        assert.matches("No such file", err)
    end)

    it("returns nil, err for a directory", function()
        local lk, err = core.flock_open(dir)
        assert.is_nil(lk)
        assert.matches("Is a directory", err)
    end)

    it("creates the lock file readable by its owner only", function()
        local path = dir .. "/x.lock"
        local lk = assert(core.flock_open(path))
        assert.equal("600", sh.mode(path))
        lk:close()
    end)

    it("excludes a second holder, also within one process", function()
        local path = dir .. "/x.lock"
        local a, b = assert(core.flock_open(path)), assert(core.flock_open(path))
        assert.is_true(a:lock())
        assert.is_false(b:lock(true, 0))
        assert.is_false(b:lock(true, 0.05))
        assert.is_false(b:lock(false, 0))
        assert.is_true(a:unlock())
        assert.is_true(b:lock(true, 0))
        a:close()
        b:close()
    end)

    it("lets shared holders in together and keeps an exclusive one out", function()
        local path = dir .. "/x.lock"
        local a, b, c = core.flock_open(path), core.flock_open(path), core.flock_open(path)
        assert.is_true(a:lock(false))
        assert.is_true(b:lock(false))
        assert.is_false(c:lock(true, 0))
        a:unlock()
        b:unlock()
        assert.is_true(c:lock(true))
        a:close(); b:close(); c:close()
    end)

    it("waits up to the timeout for another process to release it", function()
        local path = dir .. "/x.lock"
        local p, lk = held_elsewhere(path, 0.3)
        assert.is_true(lk:lock(true, 10))
        assert.equal("", p:wait())
        lk:close()
    end)

    it("is released when the holding process is killed", function()
        local path = dir .. "/x.lock"
        local p, lk = held_elsewhere(path, 60)
        os.execute("kill -9 " .. p.pid)
        assert.is_true(lk:lock(true, 10))
        p:wait()
        lk:close()
    end)

    it("serialises read-modify-write across processes", function()
        local path, counter = dir .. "/x.lock", dir .. "/counter"
        assert(core.write_atomic(counter, "0"))
        local code = [[
            local core = require "wecom.core"
            local lk = assert(core.flock_open(arg[1]))
            for _ = 1, 100 do
                assert(lk:lock(true, 30))
                local f = assert(io.open(arg[2]))
                local n = tonumber(f:read("*a"))
                f:close()
                assert(core.write_atomic(arg[2], tostring(n + 1)))
                lk:unlock()
            end
        ]]
        local kids = {}
        for i = 1, 4 do kids[i] = child.spawn(code, { path, counter }) end
        for i = 1, 4 do assert.equal("", kids[i]:wait()) end
        assert.equal("400", read_file(counter))
    end)

    it("closes idempotently, releases on close and on collection", function()
        local path = dir .. "/x.lock"
        local a = assert(core.flock_open(path))
        local b = assert(core.flock_open(path))
        assert.is_true(a:lock())
        assert.matches("held", tostring(a))
        a:close()
        a:close()
        assert.matches("closed", tostring(a))
        assert.has_error(function() a:lock() end)
        assert.has_error(function() a:unlock() end)
        assert.is_true(b:lock(true, 0))
        b:unlock()

        local c = assert(core.flock_open(path))
        assert.is_true(c:lock())
        c = nil    -- luacheck: ignore 311
        collectgarbage()
        collectgarbage()
        assert.is_true(b:lock(true, 0))
        b:close()
    end)
end)

describe("core.write_atomic", function()
    it("writes and replaces a file, 0600, leaving no temporary files", function()
        local path = dir .. "/data.json"
        assert.is_true(core.write_atomic(path, "first"))
        assert.equal("first", read_file(path))
        local binary = "x\0y" .. string.rep("z", 100000)
        assert.is_true(core.write_atomic(path, binary, true))
        assert.equal(binary, read_file(path))
        assert.is_true(core.write_atomic(path, ""))
        assert.equal("", read_file(path))
        assert.same({ "data.json" }, ls(dir))
        assert.equal("600", sh.mode(path))
    end)

    it("returns nil, err when the directory is missing", function()
        local ok, err = core.write_atomic(dir .. "/missing/data.json", "x")
        assert.is_nil(ok)
        assert.matches(dir .. "/missing/data.json", err, 1, true)
        assert.matches("No such file", err)
    end)

    it("returns nil, err when the target is a directory, and cleans up", function()
        os.execute("mkdir " .. child.quote(dir .. "/sub"))
        local ok, err = core.write_atomic(dir .. "/sub", "x")
        assert.is_nil(ok)
        assert.matches("rename", err)
        assert.same({ "sub" }, ls(dir))
    end)

    it("raises on arguments of the wrong type", function()
        assert.has_error(function() core.write_atomic(nil, "x") end)
        assert.has_error(function() core.write_atomic(dir .. "/f", nil) end)
        assert.has_error(function() core.write_atomic(dir .. "/f", {}) end)
    end)

    it("never lets a reader see a torn file", function()
        local path = dir .. "/data"
        local size = 256 * 1024
        assert(core.write_atomic(path, string.rep("a", size)))
        local writer = child.spawn([[
            local core = require "wecom.core"
            local a, b = string.rep("a", tonumber(arg[2])), string.rep("b", tonumber(arg[2]))
            io.write("go\n"); io.flush()
            for i = 1, 300 do
                assert(core.write_atomic(arg[1], i % 2 == 0 and a or b))
            end
            assert(core.write_atomic(arg[1], "done"))
        ]], { path, size })
        assert.equal("go", writer:line())
        local seen, torn = { a = 0, b = 0 }, 0
        for _ = 1, 20000 do
            local s = read_file(path)
            if s == "done" then break end
            local c = s:sub(1, 1)
            if #s ~= size or s ~= string.rep(c, size) then
                torn = torn + 1
            else
                seen[c] = seen[c] + 1
            end
        end
        assert.equal("", writer:wait())
        assert.equal(0, torn)
        assert.is_true(seen.a + seen.b > 0)
    end)
end)

describe("core.mkdir and core.getpid", function()
    it("creates a directory 0700, and accepts an existing one", function()
        local path = dir .. "/sub"
        assert.is_true(core.mkdir(path))
        assert.equal("700", sh.mode(path))
        assert.is_true(core.mkdir(path))
    end)

    it("returns nil, err for a missing parent or a file in the way", function()
        local ok, err = core.mkdir(dir .. "/a/b")
        assert.is_nil(ok)
        assert.matches("No such file", err)
        assert(core.write_atomic(dir .. "/file", "x"))
        ok, err = core.mkdir(dir .. "/file")
        assert.is_nil(ok)
        assert.matches("Not a directory", err)
        assert.has_error(function() core.mkdir(dir .. "/m", 65536) end)
        assert.has_error(function() core.mkdir(5) end)
    end)

    it("gives this process' id, different in a child", function()
        local pid = core.getpid()
        assert.is_true(pid > 1)
        assert.equal(pid, core.getpid())
        local out = child.run([[io.write(require("wecom.core").getpid())]])
        assert.is_truthy(tonumber(out))
        assert.not_equal(pid, tonumber(out))
    end)
end)

describe("core.private_dir, read_regular and flock_open_nofollow", function()
    local function sh_ok(cmd)
        assert(os.execute(cmd), cmd)
    end

    it("private_dir: true for a 0700 directory of this user, through a symbolic link too", function()
        sh_ok("chmod 700 " .. sh.quote(dir))
        assert.is_true(core.private_dir(dir))
        sh_ok("chmod 755 " .. sh.quote(dir))   -- readable by others is fine; writable is not
        assert.is_true(core.private_dir(dir))
        sh_ok("ln -s " .. sh.quote(dir) .. " " .. sh.quote(dir .. ".link"))
        assert.is_true(core.private_dir(dir .. ".link"))
        os.remove(dir .. ".link")
    end)

    it("private_dir: refuses a directory writable by group or others, a file, a missing path", function()
        for _, mode in ipairs { "1777", "0770", "0702" } do
            sh_ok("chmod " .. mode .. " " .. sh.quote(dir))
            local ok, err = core.private_dir(dir)
            assert.is_nil(ok)
            assert.equal("refusing " .. dir .. ": it is writable by group or others (mode " .. mode .. ")", err)
        end
        sh_ok("chmod 700 " .. sh.quote(dir))
        sh.write_file(dir .. "/f", "x")
        assert.equal("refusing " .. dir .. "/f: it is not a directory", select(2, core.private_dir(dir .. "/f")))
        assert.matches("No such file", select(2, core.private_dir(dir .. "/missing")))
        assert.has_error(function() core.private_dir() end)
        assert.has_error(function() core.private_dir("") end)
    end)

    it("private_dir: refuses a directory of another user", function()
        if not sh.capture("id -u"):match("^0%s*$") then
            pending("needs root, to give the directory away")
            return
        end
        sh_ok("chown nobody " .. sh.quote(dir))
        local ok, err = core.private_dir(dir)
        assert.is_nil(ok)
        local want = "^refusing " .. dir:gsub("%p", "%%%0")
            .. ": it is owned by uid %d+, not by this process' user %(uid 0%)$"
        assert.matches(want, err)
    end)

    it("read_regular: reads a file whole, binary safe; nil for a missing one", function()
        sh.write_file(dir .. "/f", "a\0b\nc")
        assert.equal("a\0b\nc", core.read_regular(dir .. "/f", 100))
        assert.equal("a\0b\nc", core.read_regular(dir .. "/f", 5))
        sh.write_file(dir .. "/empty", "")
        assert.equal("", core.read_regular(dir .. "/empty", 0))
        local v, err = core.read_regular(dir .. "/missing", 100)
        assert.is_nil(v)
        assert.is_nil(err)
    end)

    it("read_regular: refuses what is over max_bytes, without reading it", function()
        sh.write_file(dir .. "/f", "123456")
        local v, err = core.read_regular(dir .. "/f", 5)
        assert.is_nil(v)
        assert.equal("refusing " .. dir .. "/f: it is larger than the store's entries can be", err)
    end)

    it("read_regular: refuses symbolic links, FIFOs, directories and devices without blocking", function()
        sh.write_file(dir .. "/target", "planted")
        sh_ok("ln -s " .. sh.quote(dir .. "/target") .. " " .. sh.quote(dir .. "/link"))
        sh_ok("ln -s /dev/zero " .. sh.quote(dir .. "/zero"))
        sh_ok("ln -s " .. sh.quote(dir .. "/nowhere") .. " " .. sh.quote(dir .. "/dangling"))
        sh_ok("mkfifo " .. sh.quote(dir .. "/fifo"))
        sh_ok("mkdir " .. sh.quote(dir .. "/sub"))
        for name, why in pairs {
            link = "it is a symbolic link", zero = "it is a symbolic link", dangling = "it is a symbolic link",
            fifo = "it is not a regular file", sub = "it is not a regular file",
        } do
            local v, err = core.read_regular(dir .. "/" .. name, 1000)
            assert.is_nil(v, name)
            assert.equal("refusing " .. dir .. "/" .. name .. ": " .. why, err)
        end
        local v, err = core.read_regular("/dev/null", 1000)
        assert.is_nil(v)
        assert.equal("refusing /dev/null: it is not a regular file", err)
    end)

    it("read_regular: raises on arguments of the wrong type or range", function()
        assert.has_error(function() core.read_regular(dir .. "/f") end)
        assert.has_error(function() core.read_regular(dir .. "/f", -1) end)
        assert.has_error(function() core.read_regular(dir .. "/f", 2^40) end)
        assert.has_error(function() core.read_regular(5, 10) end)
    end)

    it("flock_open_nofollow: a lock like flock_open's, refusing links and special files", function()
        local path = dir .. "/x.lock"
        local a = assert(core.flock_open_nofollow(path))
        assert.equal("600", sh.mode(path))
        local b = assert(core.flock_open(path))
        assert.is_true(a:lock())
        assert.is_false(b:lock(true, 0))
        a:close()
        b:close()

        sh_ok("ln -s " .. sh.quote(dir .. "/created") .. " " .. sh.quote(dir .. "/dangling.lock"))
        local lk, err = core.flock_open_nofollow(dir .. "/dangling.lock")
        assert.is_nil(lk)
        assert.equal("refusing " .. dir .. "/dangling.lock: it is a symbolic link", err)
        assert.is_nil(read_file(dir .. "/created"))

        sh_ok("mkfifo " .. sh.quote(dir .. "/fifo.lock"))
        lk, err = core.flock_open_nofollow(dir .. "/fifo.lock")
        assert.is_nil(lk)
        assert.equal("refusing " .. dir .. "/fifo.lock: it is not a regular file", err)
    end)
end)
