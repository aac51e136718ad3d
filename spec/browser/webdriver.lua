-- Debian's headless Chromium, driven over WebDriver (Debian's chromedriver),
-- for specs that click through pages as a person does.
--
--   local webdriver = require "browser.webdriver"
--   local b = webdriver.start { hosts = "*.example.com", trust_cert = "/path/server.pem",
--                               screenshots = "build/screenshots" }
--   b:go(url); b:url(); b:text("h1"); b:click("#install"); b:status()
--   b:screenshot("01-home"); b:quit()
--
-- The browser runs as root with a fresh profile in a private directory
-- (also its HOME: nothing of it lands in the user's), no network of its own
-- (no sync, component updates or background requests), and trusts exactly
-- one more certificate key: the emulator's (--ignore-certificate-errors-spki-list,
-- a pin of its public key; every other certificate is checked as usual).
-- chromedriver and the browser run in a process group of their own, which
-- quit() ends.

local core = require "wecom.core"
local json = require "wecom.json"
local ports = require "helpers.ports"
local sh = require "helpers.sh"

local _M = {}

local quote, run, capture = sh.quote, sh.run, sh.capture

local ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
local WINDOW = "1100,820"

local CHROMIUM = os.getenv("WECOM_CHROMIUM") or "/usr/bin/chromium"
local CHROMEDRIVER = os.getenv("WECOM_CHROMEDRIVER") or "/usr/bin/chromedriver"

-- available() -> true | false, why
function _M.available()
    for _, path in ipairs { CHROMIUM, CHROMEDRIVER } do
        if not run("test -x " .. quote(path)) then
            return false, path .. " is missing (apt-get install chromium chromium-driver fonts-noto-cjk)"
        end
    end
    return true
end

-- spki(cert_file) -> base64 SHA-256 of the certificate's public key, the
-- form --ignore-certificate-errors-spki-list takes
function _M.spki(cert_file)
    local out = capture("openssl x509 -in " .. quote(cert_file) .. " -pubkey -noout"
        .. " | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64")
    local hash = out:match("^([%w+/=]+)%s*$")
    assert(hash, "cannot hash the public key of " .. cert_file .. ": " .. out)
    return hash
end

local Browser = {}
Browser.__index = Browser

-- call(method, path [, body]) -> value; raises with WebDriver's error
function Browser:call(method, path, body)
    local text = body ~= nil and assert(json.encode(body)) or nil
    local res, err = self.http:request {
        method = method,
        url = "http://127.0.0.1:" .. self.port .. path,
        headers = text and { ["Content-Type"] = "application/json; charset=utf-8" } or nil,
        body = text,
    }
    if not res then
        error("webdriver " .. method .. " " .. path .. ": " .. tostring(err), 2)
    end
    local data = json.decode(res.body)
    if type(data) ~= "table" then
        error("webdriver " .. method .. " " .. path .. ": HTTP " .. res.status .. ": " .. res.body:sub(1, 300), 2)
    end
    local value = data.value
    if res.status ~= 200 or (type(value) == "table" and value.error) then
        local why = type(value) == "table" and (tostring(value.error) .. ": " .. tostring(value.message)) or res.body
        error("webdriver " .. method .. " " .. path .. ": " .. why:sub(1, 500), 2)
    end
    return value
end

function Browser:session_path(path)
    return "/session/" .. self.session .. path
end

-- go(url): navigates and waits for the page to load
function Browser:go(url)
    self:call("POST", self:session_path("/url"), { url = url })
end

function Browser:url()
    return self:call("GET", self:session_path("/url"))
end

function Browser:title()
    return self:call("GET", self:session_path("/title"))
end

function Browser:source()
    return self:call("GET", self:session_path("/source"))
end

function Browser:refresh()
    self:call("POST", self:session_path("/refresh"), {})
end

function Browser:back()
    self:call("POST", self:session_path("/back"), {})
end

-- find(css) -> element id | nil
function Browser:find(css)
    local ok, value = pcall(self.call, self, "POST", self:session_path("/element"),
        { using = "css selector", value = css })
    if not ok then
        if tostring(value):find("no such element", 1, true) then
            return nil
        end
        error(value, 2)
    end
    return value[ELEMENT]
end

local function need(self, css)
    local id = self:find(css)
    if not id then
        error("no element " .. css .. " on " .. tostring(self:url()), 3)
    end
    return id
end

-- text(css) -> the element's rendered text | nil when there is none
function Browser:text(css)
    local id = self:find(css)
    return id and self:call("GET", self:session_path("/element/" .. id .. "/text"))
end

-- click(css): clicks the element as a person would (scrolled into view,
-- and WebDriver waits for a navigation it starts)
function Browser:click(css)
    self:call("POST", self:session_path("/element/" .. need(self, css) .. "/click"), {})
end

-- wait_for(fn [, seconds]) -> fn()'s first truthy value; raises after seconds (10)
function Browser:wait_for(fn, seconds)
    local deadline = core.monotonic() + (seconds or 10)
    repeat
        local ok, value = pcall(fn)
        if ok and value then
            return value
        end
        run("sleep 0.05")
    until core.monotonic() > deadline
    error("webdriver: waited " .. (seconds or 10) .. " s in vain on " .. tostring(self:url()), 2)
end

-- follow(css): clicks a link or button that leads to another page, and
-- waits until that page has loaded (WebDriver's click may return before a
-- form's navigation has begun)
function Browser:follow(css)
    local before = self:url()
    self:click(css)
    self:wait_for(function()
        return self:url() ~= before and self:script("return document.readyState;") == "complete"
    end)
end

-- script(js, ...) -> what the script returns
function Browser:script(js, ...)
    return self:call("POST", self:session_path("/execute/sync"), { script = js, args = json.array { ... } })
end

-- status() -> the HTTP status of the page on screen
function Browser:status()
    return self:script("const n = performance.getEntriesByType('navigation')[0];"
        .. " return n ? n.responseStatus : null;")
end

-- cookie(name) -> value | nil
function Browser:cookie(name)
    local ok, value = pcall(self.call, self, "GET", self:session_path("/cookie/" .. name))
    return ok and value.value or nil
end

-- screenshot(name) -> path: a PNG of the window in the screenshots directory
function Browser:screenshot(name)
    local png = assert(core.base64_decode(self:call("GET", self:session_path("/screenshot"))))
    assert(png:sub(1, 8) == "\137PNG\r\n\026\n", "the screenshot is not a PNG")
    local path = self.screenshots .. "/" .. name .. ".png"
    sh.write_file(path, png)
    return path
end

-- quit(): ends the session, chromedriver and everything they started
function Browser:quit()
    if self.stopped then
        return
    end
    self.stopped = true
    if self.session then
        pcall(self.call, self, "DELETE", "/session/" .. self.session)
    end
    self.http:close()
    if self.pid then
        run("kill -TERM -" .. self.pid .. " 2>/dev/null")
        for _ = 1, 100 do
            if not run("kill -0 -" .. self.pid .. " 2>/dev/null") then
                break
            end
            run("sleep 0.05")
        end
        run("kill -KILL -" .. self.pid .. " 2>/dev/null")
    end
    if not os.getenv("WECOM_KEEP_BROWSER") then
        run("rm -rf " .. quote(self.dir))
    end
end

local function ready(self)
    local ok, value = pcall(self.call, self, "GET", "/status")
    return ok and type(value) == "table" and value.ready == true
end

-- start{ hosts = "*.example.com" (names that resolve to 127.0.0.1),
--        trust_cert = PEM file whose key the browser trusts,
--        screenshots = directory } -> browser
function _M.start(opts)
    local dir = sh.tmpdir("wecom-browser")
    local self = setmetatable({ dir = dir, screenshots = opts.screenshots or dir,
                                http = core.http_session { allow_http = true, timeout = 60 } }, Browser)
    assert(run("mkdir -p " .. quote(self.screenshots)))
    local args = {
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        "--user-data-dir=" .. dir .. "/profile",
        "--window-size=" .. WINDOW, "--lang=zh-CN", "--force-device-scale-factor=1",
    }
    if opts.hosts then
        args[#args + 1] = "--host-resolver-rules=MAP " .. opts.hosts .. " 127.0.0.1"
    end
    if opts.trust_cert then
        args[#args + 1] = "--ignore-certificate-errors-spki-list=" .. _M.spki(opts.trust_cert)
    end
    local last
    for _ = 1, 5 do
        self.port = ports.pick()
        -- setsid: chromedriver leads a process group of its own, with the browser in it
        local out = capture("HOME=" .. quote(dir) .. " setsid " .. quote(CHROMEDRIVER) .. " --port=" .. self.port
            .. " --log-path=" .. quote(dir .. "/chromedriver.log") .. " >/dev/null 2>&1 </dev/null & echo $!")
        self.pid = tonumber(out:match("%d+"))
        for _ = 1, 100 do
            if ready(self) then
                break
            end
            run("sleep 0.05")
        end
        if ready(self) then
            local ok, value = pcall(self.call, self, "POST", "/session", { capabilities = { alwaysMatch = {
                browserName = "chrome",
                ["goog:chromeOptions"] = { binary = CHROMIUM, args = args },
            } } })
            if ok then
                self.session = value.sessionId
                return self
            end
            last = value
        else
            last = "chromedriver did not answer on port " .. self.port .. ": "
                .. (sh.read_file(dir .. "/chromedriver.log") or ""):sub(-2000)
        end
        run("kill -KILL -" .. tostring(self.pid) .. " 2>/dev/null")
    end
    self:quit()
    error("cannot start the browser: " .. tostring(last), 2)
end

return _M
