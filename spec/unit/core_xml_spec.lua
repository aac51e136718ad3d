-- wecom.core xml_decode: expat into Lua tables (notes/CONTRACTS.md "xml").
local core = require "wecom.core"

local rep = string.rep

local decode = core.xml_decode

-- Reference §7.7 V1 plaintext (a text message) and §9.6 (a nested event).
local V1_PLAIN = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
  .. "<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n"
  .. "<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
  .. "<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"

local BATCH_JOB = "<xml><ToUserName><![CDATA[wwCORP]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
  .. "<CreateTime>1425284517</CreateTime><MsgType><![CDATA[event]]></MsgType>"
  .. "<Event><![CDATA[batch_job_result]]></Event><BatchJob><JobId><![CDATA[jobid_1]]></JobId>"
  .. "<JobType><![CDATA[import_chain_contact]]></JobType><ErrCode>0</ErrCode><ErrMsg><![CDATA[ok]]></ErrMsg>"
  .. "</BatchJob></xml>"

local function nested(depth)
  return rep("<a>", depth) .. "x" .. rep("</a>", depth)
end

local function expect_error(s, opts, pattern)
  local t, err = decode(s, opts)
  assert.is_nil(t)
  assert.equal("string", type(err))
  if pattern then
    assert.matches(pattern, err)
  end
  return err
end


describe("wecom.core xml_decode", function()

  describe("documents", function()
    it("decodes a callback message into its root's children by name", function()
      local t, root = decode(V1_PLAIN)
      assert.equal("xml", root)
      assert.same({
        ToUserName = "wx5823bf96d3bd56c7",
        FromUserName = "mycreate",
        CreateTime = "1409659813",
        MsgType = "text",
        Content = "hello",
        MsgId = "4561255354251345929",
        AgentID = "218",
      }, t)
    end)

    it("decodes an encrypted envelope", function()
      local t, root = decode("<xml><ToUserName><![CDATA[wwCORP]]></ToUserName>"
        .. "<AgentID><![CDATA[218]]></AgentID><Encrypt><![CDATA[a+b/c==]]></Encrypt></xml>")
      assert.equal("xml", root)
      assert.same({ ToUserName = "wwCORP", AgentID = "218", Encrypt = "a+b/c==" }, t)
    end)

    it("turns an element with child elements into a nested table", function()
      local t = decode(BATCH_JOB)
      assert.equal("batch_job_result", t.Event)
      assert.same({ JobId = "jobid_1", JobType = "import_chain_contact", ErrCode = "0", ErrMsg = "ok" },
                  t.BatchJob)
    end)

    it("returns the root name and an empty table for an empty root", function()
      local t, root = decode("<root/>")
      assert.same({}, t)
      assert.equal("root", root)
      t, root = decode("<?xml version=\"1.0\"?>\n<Other></Other>\n")
      assert.same({}, t)
      assert.equal("Other", root)
    end)
  end)


  describe("text", function()
    it("concatenates CDATA and character data of a leaf", function()
      local t = decode("<x><a>one<![CDATA[<two>]]>three<![CDATA[]]></a></x>")
      assert.equal("one<two>three", t.a)
    end)

    it("gives an empty leaf the empty string", function()
      local t = decode("<x><a/><b></b><c><![CDATA[]]></c></x>")
      assert.same({ a = "", b = "", c = "" }, t)
    end)

    it("keeps whitespace inside a leaf", function()
      local t = decode("<x><a> </a><b>\n  two words \n</b></x>")
      assert.equal(" ", t.a)
      assert.equal("\n  two words \n", t.b)
    end)

    it("ignores whitespace between child elements", function()
      local t = decode("<x>\n  <p>\n    <q>1</q>\n    <r>2</r>\n  </p>\n</x>\n")
      assert.same({ p = { q = "1", r = "2" } }, t)
    end)

    it("expands the predefined entities and character references", function()
      local t = decode("<x><a>&lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;</a><z>&#x4E2D;&#25991;</z></x>")
      assert.equal("<b> & \"c\" 'd'", t.a)
      assert.equal("中文", t.z)
    end)

    it("passes UTF-8 through and converts a declared Latin-1 document", function()
      local t = decode("<x><n>企业微信 上下游</n></x>")
      assert.equal("企业微信 上下游", t.n)
      t = decode("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><x><n>caf\233</n></x>")
      assert.equal("café", t.n)
    end)

    it("keeps large text intact", function()
      local body = rep("0123456789abcdef", 8192)
      local t = decode("<x><big><![CDATA[" .. body .. "]]></big><after>1</after></x>")
      assert.equal(body, t.big)
      assert.equal("1", t.after)
    end)

    it("ignores attributes, comments and processing instructions", function()
      local t = decode("<x a=\"1\"><!-- note --><?pi data?><b c=\"2\">v</b></x>")
      assert.same({ b = "v" }, t)
    end)
  end)


  describe("repeated names", function()
    it("collects repeated leaves into a list in document order", function()
      local t = decode("<x><id>1</id><name>n</name><id>2</id><id>3</id></x>")
      assert.same({ "1", "2", "3" }, t.id)
      assert.equal("n", t.name)
    end)

    it("collects repeated tables, even when the first one is a table", function()
      local t = decode("<x><item><k>a</k></item><item><k>b</k></item><item>leaf</item></x>")
      assert.same({ { k = "a" }, { k = "b" }, "leaf" }, t.item)
    end)

    it("keeps lists per parent", function()
      local t = decode("<x><g><i>1</i><i>2</i></g><g><i>3</i></g><i>top</i></x>")
      assert.same({ { i = { "1", "2" } }, { i = "3" } }, t.g)
      assert.equal("top", t.i)
    end)

    it("handles many siblings", function()
      local parts = {}
      for i = 1, 5000 do
        parts[i] = "<n>" .. i .. "</n>"
      end
      local t = decode("<x>" .. table.concat(parts) .. "</x>")
      assert.equal(5000, #t.n)
      assert.equal("1", t.n[1])
      assert.equal("5000", t.n[5000])
    end)
  end)


  describe("refuses", function()
    it("a DOCTYPE", function()
      expect_error("<!DOCTYPE x><x/>", nil, "DTD not allowed")
      expect_error("<?xml version=\"1.0\"?>\n<!DOCTYPE x SYSTEM \"x.dtd\"><x/>", nil, "DTD not allowed")
    end)

    it("entity declarations (billion laughs)", function()
      local lol = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
      local prev = "lol"
      for i = 1, 9 do
        local name = "lol" .. i
        lol = lol .. '<!ENTITY ' .. name .. ' "' .. rep("&" .. prev .. ";", 10) .. '">'
        prev = name
      end
      lol = lol .. ']><lolz>&lol9;</lolz>'
      expect_error(lol, nil, "DTD not allowed")
    end)

    it("external entities", function()
      expect_error('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x><a>&e;</a></x>', nil,
                   "DTD not allowed")
      expect_error('<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><x/>', nil,
                   "DTD not allowed")
    end)

    it("undeclared entity references", function()
      expect_error("<x><a>&e;</a></x>", nil, "undefined entity")
    end)

    it("nesting over the default depth of 32", function()
      assert.equal("x", decode(nested(32)).a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a)
      expect_error(nested(33), nil, "nesting deeper than max_depth %(32%)")
      expect_error(nested(100000), nil, "max_depth")
    end)

    it("nesting over a given max_depth", function()
      assert.same({ b = "1" }, decode("<a><b>1</b></a>", { max_depth = 2 }))
      expect_error("<a><b>1</b></a>", { max_depth = 1 }, "max_depth %(1%)")
      assert.is_table(decode(nested(200), { max_depth = 200 }))
    end)

    it("a document over 1 MiB by default, before parsing it", function()
      local big = "<x>" .. rep("a", 1024 * 1024) .. "</x>"
      expect_error(big, nil, "over max_size")
      -- even when malformed: the size is checked first
      expect_error(rep("<", 1024 * 1024 + 1), nil, "over max_size")
    end)

    it("a document over a given max_size", function()
      expect_error("<x>12345</x>", { max_size = 11 }, "over max_size %(11%)")
      assert.same({}, decode("<x>12345</x>", { max_size = 12 }))
    end)

    it("malformed documents", function()
      local cases = {
        { "<x><y></x>", "mismatched tag" },
        { "<x><y>", "no element found" },
        { "<x/><y/>", "junk after document element" },
        { "just text", "syntax error" },
        { "<", "" },
        { "<x a=1/>", "" },
        { "<html><body>502 Bad Gateway</body>", "no element found" },
        { "\0<x/>", "" },
        { "<x>\255\254</x>", "invalid token" },
      }
      for _, case in ipairs(cases) do
        local err = expect_error(case[1], nil, case[2])
        assert.matches("^xml: ", err)
      end
    end)

    it("the empty string and whitespace", function()
      expect_error("", nil, "empty document")
      expect_error("  \n", nil, "no element found")
    end)
  end)


  describe("arguments", function()
    it("raise when the document is not a string", function()
      assert.has_error(function() decode(nil) end)
      assert.has_error(function() decode({}) end)
    end)

    it("raise on bad options", function()
      assert.has_error(function() decode("<x/>", "opts") end)
      assert.has_error(function() decode("<x/>", { max_depth = "deep" }) end)
      assert.has_error(function() decode("<x/>", { max_depth = 0 }) end)
      assert.has_error(function() decode("<x/>", { max_depth = 1.5 }) end)
      assert.has_error(function() decode("<x/>", { max_size = -1 }) end)
    end)
  end)


  describe("reuse", function()
    it("decodes correctly after every kind of failure", function()
      local failures = { "<!DOCTYPE x><x/>", nested(40), "<x><y></x>", "" }
      for _, bad in ipairs(failures) do
        assert.is_nil((decode(bad)))
        assert.same({ a = "1", b = { c = "2" } }, decode("<r><a>1</a><b><c>2</c></b></r>"))
      end
    end)

    it("gives independent results for consecutive documents", function()
      local first = decode("<x><a>1</a></x>")
      local second = decode("<x><b>2</b></x>")
      assert.same({ a = "1" }, first)
      assert.same({ b = "2" }, second)
    end)

    it("can be called from a finalizer while another decode converts", function()
      local seen
      local mt = { __gc = function() seen = decode("<g><v>from gc</v></g>") end }
      local parts = {}
      for i = 1, 2000 do
        parts[i] = "<i>" .. i .. "</i>"
      end
      local doc = "<x>" .. table.concat(parts) .. "</x>"
      for _ = 1, 20 do
        setmetatable({}, mt)
        if newproxy then    -- LuaJIT: tables have no __gc, userdata do
          getmetatable(newproxy(true)).__gc = mt.__gc
        end
        local t = decode(doc)
        assert.equal(2000, #t.i)
        assert.equal("2000", t.i[2000])
      end
      collectgarbage()
      assert.same({ v = "from gc" }, seen)
    end)
  end)
end)
