-- wecom.core xml_decode: expat into Lua tables (docs/internals.md, "The XML fast path
-- and expat").
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

    it("keys every element by its own name, however many names come and go", function()
      -- more distinct names than the core keeps strings for (64), of many
      -- lengths, some over the kept length (32), decoded in turns: each
      -- table holds exactly its document's names
      local function doc(k)
        local parts, want = {}, {}
        for i = 1, 9 do
          local name = ("N" .. (k * 7 + i) % 150):rep(1 + (k + i) % 12)
          parts[i] = "<" .. name .. ">v" .. i .. "</" .. name .. ">"
          want[name] = "v" .. i
        end
        return "<xml>" .. table.concat(parts) .. "</xml>", want
      end
      for round = 1, 3 do
        for k = 1, 200 do
          local text, want = doc(k)
          assert.same(want, decode(text), "round " .. round .. ", doc " .. k)
        end
      end
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
      assert.has_error(function() decode(nil) end, "wecom.core.xml_decode: s must be a string (got nil)")
      assert.has_error(function() decode({}) end)
    end)

    it("raise on bad options", function()
      assert.has_error(function() decode("<x/>", "opts") end)
      assert.has_error(function() decode("<x/>", { max_depth = "deep" }) end)
      assert.has_error(function() decode("<x/>", { max_depth = 0 }) end,
                       "wecom.core.xml_decode: opts.max_depth must be an integer in [1, 10000] (got number 0)")
      assert.has_error(function() decode("<x/>", { max_dept = 2 }) end,
                       "wecom.core.xml_decode: unknown option 'max_dept' in opts")
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

  describe("fast path", function()
    -- The scanner takes the plain subset and hands everything else to
    -- expat; parser = "fast" shows where it gives up, parser = "expat"
    -- skips it.  Every document must decode exactly as expat alone does.

    local FAST = { parser = "fast" }
    local EXPAT = { parser = "expat" }

    -- Park-Miller, so a failing document can be reproduced from its seed.
    local seed = 1
    local function rand(n)
      seed = seed * 16807 % 2147483647
      return seed % n
    end
    local function pick(list)
      return list[rand(#list) + 1]
    end

    local function utf8_encode(cp)
      if cp < 0x80 then
        return string.char(cp)
      elseif cp < 0x800 then
        return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
      elseif cp < 0x10000 then
        return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40,
                           0x80 + cp % 0x40)
      end
      return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
                         0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
    end

    -- Code points XML allows, from every UTF-8 length and edge.
    local CP_RANGES = {
      { 0x80, 0x9F }, { 0xA0, 0x7FF }, { 0x800, 0xFFF }, { 0x1000, 0xD7FF },
      { 0xE000, 0xFFFD }, { 0x10000, 0x3FFFF }, { 0x40000, 0x10FFFF },
      { 0x4E00, 0x4E2F }, { 0xFFF0, 0xFFFD }, { 0x10FFF0, 0x10FFFF },
    }
    local function any_char()
      local r = pick(CP_RANGES)
      return utf8_encode(r[1] + rand(r[2] - r[1] + 1))
    end

    local NAME_START = "abcxyzABCXYZ_"
    local NAME_CHARS = NAME_START .. "0189-."
    local function name()
      if rand(4) == 0 then
        return pick({ "xml", "Encrypt", "ToUserName", "item", "a", "A", "_", "x-1.y" })
      end
      local k = rand(#NAME_START) + 1
      local out = { NAME_START:sub(k, k) }
      for i = 2, 1 + rand(6) do
        k = rand(#NAME_CHARS) + 1
        out[i] = NAME_CHARS:sub(k, k)
      end
      return table.concat(out)
    end

    local TEXT_BITS = { "a", "Z", "0", " ", "\t", "\n", "]", "]]", "'", "\"", "=", "/", "?", "!",
                        "{\"k\": 1}", "企业微信", "\127" }
    local CDATA_BITS = { "<", ">", "&", "&amp;", "]", "]]", "] ]>", "<![CDATA[", "<!-- c -->",
                         "x", " ", "\n" }

    local function text(bits)
      local out = {}
      for i = 1, rand(6) do
        out[i] = rand(4) == 0 and any_char() or pick(bits)
      end
      return table.concat(out)
    end

    local function space()
      return pick({ "", "", "", " ", "\n", "\n  ", "\t" })
    end

    -- A leaf's content: text and CDATA pieces in any order.
    local function leaf_content()
      local out = {}
      for i = 1, rand(4) do
        if rand(2) == 0 then
          out[i] = text(TEXT_BITS)
        else
          -- pieces like "]]" and ">" may meet; only the end may be "]]>"
          out[i] = "<![CDATA[" .. text(CDATA_BITS):gsub("%]%]>", "]] >") .. "]]>"
        end
      end
      return table.concat(out)
    end

    local function element(depth, name_pool)
      local n = pick(name_pool)
      local close = "</" .. n .. space() .. ">"
      local r = rand(10)
      if r == 0 then
        return "<" .. n .. space() .. "/>"
      end
      if depth >= 5 or r < 5 then
        return "<" .. n .. space() .. ">" .. leaf_content() .. close
      end
      local pool = {}
      for i = 1, 1 + rand(4) do
        pool[i] = name()
      end
      local out = { "<" .. n .. ">" }
      if rand(4) == 0 then   -- text before and between children is ignored
        out[#out + 1] = text(TEXT_BITS)
      end
      for _ = 1, 1 + rand(6) do
        out[#out + 1] = space() .. element(depth + 1, pool) .. (rand(5) == 0 and text(TEXT_BITS) or "")
      end
      out[#out + 1] = space() .. close
      return table.concat(out)
    end

    local DECLARATIONS = {
      "", "", "", "<?xml version=\"1.0\"?>", "<?xml version='1.0'?>",
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<?xml version=\"1.0\" encoding='utf-8' ?>",
      "<?xml version = \"1.0\"\n encoding=\"UTF-8\" standalone=\"yes\"?>",
      "<?xml version=\"1.0\" standalone='no'?>", "<?xml\tversion=\"1.0\"\t?>",
    }

    local function document()
      local pool = { name() }
      return pick(DECLARATIONS) .. space() .. element(1, pool) .. space()
    end

    -- Each mutation takes a document and makes one that may leave the
    -- subset, be malformed, or (by chance) stay fine.
    local function at_random_place(doc, piece, replace)
      local pos = rand(#doc + 1)
      return doc:sub(1, pos) .. piece .. doc:sub(pos + 1 + (replace or 0))
    end
    local function inside_root(doc, piece)   -- right after the first '>' of the root element
      local open = doc:find("<[%a_]")
      local gt = open and doc:find(">", open, true)
      if not gt then   -- an earlier mutation broke the root
        return at_random_place(doc, piece)
      end
      return doc:sub(1, gt) .. piece .. doc:sub(gt + 1)
    end
    local function in_text(doc, piece)       -- into the first leaf text or CDATA
      local pos = doc:find("<!%[CDATA%[") or doc:find(">[^<]", doc:find("<[%a_]") or 1)
      if not pos then
        return at_random_place(doc, piece)
      end
      pos = doc:find("[^<]", pos + 1) or pos
      return doc:sub(1, pos) .. piece .. doc:sub(pos + 1)
    end

    local BAD_BYTES = { "\0", "\1", "\11", "\12", "\r", "\r\n", "\127", "\128", "\191", "\192\128",
      "\193\191", "\194", "\224\128\128", "\224\159\191", "\237\160\128", "\237\191\191",
      "\239\191\190", "\239\191\191", "\239\187\191", "\240\128\128\128", "\240\143\191\191",
      "\244\144\128\128", "\245\128\128\128", "\255", "\226\130", "\194\133", "\239\191\189",
      "\244\143\191\191", "\238\128\128" }
    local MARKUP = { "&amp;", "&lt;", "&#65;", "&#x4E2D;", "&undefined;", "&", "&#0;", ">", "]]>",
      "<!-- comment -->", "<?pi data?>", "<!DOCTYPE x>", "<![CDATA[x]]>", "<b/>", "</b>", "<",
      "<!", "<![CDATA[", " a=\"1\"", "<a:b>x</a:b>", "<1a/>", "<-a/>", "<.a/>", "<\195\169/>", "<a b/>",
      "<a/ >", "< a/>", "</ a>", "<a></a>", "text", "\n", " ", "<?xml version=\"1.0\"?>" }
    local PROLOGS = { " <?xml version=\"1.0\"?>", "\239\187\191", "<?xml version=\"1.1\"?>",
      "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>", "<?xml version=\"1.0\" encoding=\"utf8\"?>",
      "<?xml version=\"1.0\" encoding=\"UTF-16\"?>", "<?xml encoding=\"UTF-8\"?>",
      "<?xml version=\"1.0\" standalone=\"maybe\"?>", "<?xml version=\"1.0\"encoding=\"UTF-8\"?>",
      "<?xml version=\"1.0\" encoding=\"UTF-8\" version=\"1.0\"?>", "<?xml version=\"1.0\"? >",
      "<?xml version=\"1.0\" ?>", "<?xml-stylesheet href=\"a\"?>", "<?xml version=\"1.0'?>",
      "<?xml version=\"1.0\" standalone=\"yes\" encoding=\"UTF-8\"?>", "<?XML version=\"1.0\"?>",
      "<!-- c -->", "<!DOCTYPE x>", "text", "\n\n", "<?xml version=\"1.0\"?><?xml version=\"1.0\"?>" }

    local MUTATIONS = {
      function(doc) return in_text(doc, pick(BAD_BYTES)) end,
      function(doc) return at_random_place(doc, pick(BAD_BYTES)) end,
      function(doc) return in_text(doc, pick(MARKUP)) end,
      function(doc) return inside_root(doc, pick(MARKUP)) end,
      function(doc) return at_random_place(doc, pick(MARKUP)) end,
      function(doc) return pick(PROLOGS) .. doc end,
      function(doc) return doc .. pick(MARKUP) end,
      function(doc) return at_random_place(doc, "", 1) end,              -- drop a byte
      function(doc) return doc:sub(1, 1 + rand(#doc)) end,               -- truncate
      function(doc)                                                      -- swap in a syntax byte
        return at_random_place(doc, pick({ "<", ">", "/", "!", "?", "[", "]", "=", "\"", " ", ":", "&" }), 1)
      end,
      -- well-formed, just outside the subset
      function(doc) return in_text(doc, pick({ "&amp;", "&lt;", "&#65;", "&#x4E2D;", "\r\n", "\r", ">" })) end,
      function(doc) return inside_root(doc, pick({ "<!-- c -->", "<?pi x?>", "\r\n", "<v a='1'>&gt;</v>" })) end,
      function(doc) return (doc:gsub("<([%a_][%w_%.%-]*)", "<%1 a=\"&amp;\"", 1)) end,
      function(doc) return pick({ "\239\187\191", "<!-- c -->", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" })
        .. (doc:gsub("^<%?xml.-%?>", "")) end,
      function(doc)                                                      -- rename one end tag
        return (doc:gsub("</([%w_%.%-]+)", "</%1x", 1))
      end,
    }

    local function same_result(doc, opts)
      local t_expat, r_expat = decode(doc, opts and { parser = "expat", max_depth = opts.max_depth } or EXPAT)
      local t_auto, r_auto = decode(doc, opts)
      local t_fast, r_fast = decode(doc, opts and { parser = "fast", max_depth = opts.max_depth } or FAST)
      -- the default parser answers exactly as expat alone, errors included
      assert.same({ t_expat, r_expat }, { t_auto, r_auto }, doc)
      if t_fast then
        assert.is_table(t_expat, doc)
        assert.same({ t_expat, r_expat }, { t_fast, r_fast }, doc)
      else
        assert.equal("xml: outside the fast subset", r_fast)
      end
      return t_fast ~= nil, t_expat ~= nil
    end

    it("takes the callback documents", function()
      for _, doc in ipairs({ V1_PLAIN, BATCH_JOB, "<x/>", "<?xml version=\"1.0\"?>\n<x>\n</x>\n",
          "<x><a>one<![CDATA[<two>]]>three<![CDATA[]]></a><b/><c></c></x>" }) do
        local t, root = decode(doc, FAST)
        assert.is_table(t, doc)
        assert.same({ decode(doc, EXPAT) }, { t, root })
      end
      assert.equal("one<two>three", decode("<x><a>one<![CDATA[<two>]]>three</a></x>", FAST).a)
    end)

    it("leaves everything outside the subset to expat", function()
      for _, doc in ipairs({ "<x a=\"1\"/>", "<x>&amp;</x>", "<x><!-- c --></x>", "<x><?pi?></x>",
          "<!DOCTYPE x><x/>", "<x>a\r\nb</x>", "\239\187\191<x/>", "<x>a>b</x>",
          "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><x/>", "<a:b/>" }) do
        local t, err = decode(doc, FAST)
        assert.is_nil(t, doc)
        assert.equal("xml: outside the fast subset", err)
        same_result(doc)
      end
      assert.equal("a\nb", decode("<x><v>a\r\nb</v></x>").v)
    end)

    it("gives up beyond max_depth, so expat reports it", function()
      assert.is_nil(decode(nested(3), { parser = "fast", max_depth = 2 }))
      assert.is_table(decode(nested(3), { parser = "fast", max_depth = 3 }))
      same_result(nested(40))
    end)

    it("reads names of any length and ends them where expat does, whatever byte follows", function()
      -- the scanner reads names 16 bytes at a time: every length around
      -- that block, and every byte right after a name, start and end tag
      local chars = "aZ_09.-"
      for len = 1, 40 do
        local parts = {}
        for i = 1, len do
          local k = (i * 7 + len) % #chars + 1
          parts[i] = i == 1 and "N" or chars:sub(k, k)
        end
        local n = table.concat(parts)
        local doc = "<x><" .. n .. ">v</" .. n .. "><" .. n .. "b/></x>"
        local t = decode(doc, FAST)
        assert.same({ [n] = "v", [n .. "b"] = "" }, t, doc)
        same_result(doc)
        same_result("<" .. n .. "/>")
      end
      for b = 0, 255 do
        local c = string.char(b)
        for _, doc in ipairs({ "<x><abcdefgh" .. c .. "ij>v</abcdefgh" .. c .. "ij></x>",
                               "<x><abcdefgh" .. c .. ">v</abcdefgh" .. c .. "></x>",
                               "<x><ab>v</ab" .. c .. "></x>", "<x><a" .. c .. "/></x>" }) do
          same_result(doc)
        end
      end
    end)

    it("decodes random documents of the subset exactly as expat does", function()
      for i = 1, 600 do
        seed = i
        local doc = document()
        local fast, ok = same_result(doc)
        assert.is_true(ok, doc)
        assert.is_true(fast, doc)
      end
    end)

    it("agrees with expat on random documents outside the subset and malformed ones", function()
      local counts = { fast = 0, expat_only = 0, refused = 0 }
      for i = 1, 2000 do
        seed = 100000 + i
        local doc = document()
        for _ = 1, rand(4) == 0 and 2 or 1 do
          doc = pick(MUTATIONS)(doc)
        end
        local depth = rand(3) == 0 and { max_depth = 1 + rand(5) } or nil
        local fast, ok = same_result(doc, depth)
        local key = fast and "fast" or ok and "expat_only" or "refused"
        counts[key] = counts[key] + 1
      end
      -- the mutations reach all three outcomes, so each comparison ran often
      assert.is_true(counts.fast > 50, "fast " .. counts.fast)
      assert.is_true(counts.expat_only > 150, "expat only " .. counts.expat_only)
      assert.is_true(counts.refused > 500, "refused " .. counts.refused)
    end)

    it("checks the parser option", function()
      assert.has_error(function() decode("<x/>", { parser = "libxml2" }) end,
                       'wecom.core.xml_decode: opts.parser must be one of "auto", "expat", "fast" (got string)')
      assert.has_error(function() decode("<x/>", { parser = 1 }) end)
      assert.same({ {}, "x" }, { decode("<x/>", { parser = "auto" }) })
    end)
  end)

  describe("callback_open", function()
    -- core.callback_open(crypter, msg_signature, timestamp, nonce, body):
    -- wecom.callback's decrypt of an XML envelope in one call.
    local callback = require "wecom.callback"

    local TOKEN, AES_KEY, RID = "tok3n", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wwCORP"
    local c = assert(core.crypter(TOKEN, AES_KEY))
    local open = core.callback_open

    -- A wecom.callback object that always takes decrypt's general path
    -- (parse, then every check in order): a fresh copy of the module made
    -- while both one-call functions decline everything.
    local function general_path(opts)
      local real_open, real_query = core.callback_open, core.callback_open_query
      core.callback_open = function() return false end
      core.callback_open_query = core.callback_open
      package.loaded["wecom.callback"] = nil
      local ok, fresh = pcall(require, "wecom.callback")
      core.callback_open, core.callback_open_query = real_open, real_query
      package.loaded["wecom.callback"] = callback
      assert(ok, fresh)
      return fresh.new(opts)
    end

    local function sealed(msg, rid, wrap)
      local enc = assert(c:encrypt(msg, rid or RID))
      local ts, nonce = "1700000000", "424242"
      local body = (wrap or "<xml><ToUserName><![CDATA[wwCORP]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt>"
        .. "<AgentID><![CDATA[1]]></AgentID></xml>"):format(enc)
      return c:signature(ts, nonce, enc), ts, nonce, body, enc
    end

    it("verifies, decrypts and decodes in one call", function()
      local sig, ts, nonce, body = sealed(V1_PLAIN)
      local msg, rid, event = open(c, sig, ts, nonce, body)
      assert.equal(V1_PLAIN, msg)
      assert.equal(RID, rid)
      assert.same(decode(V1_PLAIN), event)
      assert.equal(3, select("#", open(c, sig, ts, nonce, body)))
    end)

    it("takes an envelope only expat parses, and a plaintext only expat parses", function()
      local plain = "<xml a='1'><Content>&lt;b&gt;</Content><!-- c --></xml>"
      local sig, ts, nonce, body = sealed(plain, RID,
        "<?xml version='1.0' encoding='ISO-8859-1'?>\n<xml lang='x'><!-- e --><Encrypt>%s</Encrypt></xml>")
      local msg, rid, event = open(c, sig, ts, nonce, body)
      assert.equal(plain, msg)
      assert.equal(RID, rid)
      assert.same({ Content = "<b>" }, event)
    end)

    it("leaves a plaintext that is not well-formed XML to the caller's parser", function()
      local sig, ts, nonce, body = sealed("<xml><a></xml>")
      assert.same({ "<xml><a></xml>", RID }, { open(c, sig, ts, nonce, body) })
      assert.equal(2, select("#", open(c, sig, ts, nonce, body)))
    end)

    it("leaves a plaintext that does not start with '<' to the caller", function()
      local sig, ts, nonce, body = sealed('{"msgtype":"text"}')
      assert.same({ '{"msgtype":"text"}', RID }, { open(c, sig, ts, nonce, body) })
      sig, ts, nonce, body = sealed(" <xml/>")
      assert.same({ " <xml/>", RID }, { open(c, sig, ts, nonce, body) })
    end)

    it("answers as crypter:open for a bad signature or ciphertext", function()
      local sig, ts, nonce, body, enc = sealed(V1_PLAIN)
      local bad_sig = (sig:sub(1, 1) == "0" and "1" or "0") .. sig:sub(2)
      assert.same({ c:open(bad_sig, ts, nonce, enc) }, { open(c, bad_sig, ts, nonce, body) })
      assert.same({ nil, "signature mismatch", -40001 }, { open(c, bad_sig, ts, nonce, body) })
      local cut = enc:sub(1, 42)     -- not whole base64 quanta
      local cut_body = body:gsub(enc:gsub("%p", "%%%0"), cut)
      local cut_sig = c:signature(ts, nonce, cut)
      assert.same({ c:open(cut_sig, ts, nonce, cut) }, { open(c, cut_sig, ts, nonce, cut_body) })
      assert.equal(-40010, select(3, open(c, cut_sig, ts, nonce, cut_body)))
    end)

    it("answers false for anything but a plain XML envelope with one Encrypt", function()
      local sig, ts, nonce, body, enc = sealed(V1_PLAIN)
      local others = {
        "", "{\"encrypt\":\"" .. enc .. "\"}", body:sub(1, -3), "<xml><ToUserName>x</ToUserName></xml>",
        "<xml><Encrypt></Encrypt></xml>", "<xml><Encrypt><a>" .. enc .. "</a></Encrypt></xml>",
        "<xml><Encrypt>" .. enc .. "</Encrypt><Encrypt>" .. enc .. "</Encrypt></xml>",
        "<xml><Encrypt>" .. enc .. "</Encrypt>" .. rep("<p>", 40) .. rep("</p>", 40) .. "</xml>",
        "<!DOCTYPE x><xml><Encrypt>" .. enc .. "</Encrypt></xml>",
        "<xml><Encrypt>" .. enc .. "</Encrypt><big>" .. rep("a", 1024 * 1024) .. "</big></xml>",
      }
      for _, other in ipairs(others) do
        assert.is_false(open(c, sig, ts, nonce, other), other:sub(1, 60))
      end
      assert.is_false(open(c, 1, ts, nonce, body))
      assert.is_false(open(c, sig, ts, nil, body))
      assert.is_false(open(c, sig, ts, nonce, nil))
    end)

    it("can be called from a finalizer while another call is under way", function()
      local parts = {}
      for i = 1, 1500 do
        parts[i] = "<i>" .. i .. "</i>"
      end
      local big = "<x>" .. table.concat(parts) .. "</x>"    -- over the crypter's 8 KiB stack scratch
      local sig, ts, nonce, body = sealed(big, RID,
        "<xml a='expat, so Encrypt sits in the scratch buffer'><Encrypt>%s</Encrypt></xml>")
      local s2, t2, n2, b2 = sealed(V1_PLAIN)
      local seen
      local gc = function() seen = select(3, open(c, s2, t2, n2, b2)) end
      for _ = 1, 20 do
        setmetatable({}, { __gc = gc })
        if newproxy then    -- LuaJIT: tables have no __gc, userdata do
          getmetatable(newproxy(true)).__gc = gc
        end
        local msg, rid, event = open(c, sig, ts, nonce, body)
        assert.equal(big, msg)
        assert.equal(RID, rid)
        assert.equal(1500, #event.i)
      end
      collectgarbage()
      assert.same(decode(V1_PLAIN), seen)
    end)

    it("raises for a crypter that is not one or is closed", function()
      local sig, ts, nonce, body = sealed(V1_PLAIN)
      assert.has_error(function() open({}, sig, ts, nonce, body) end,
                       "wecom.core.callback_open: expected a wecom.core.crypter (got table)")
      local closed = assert(core.crypter(TOKEN, AES_KEY))
      closed:close()
      assert.has_error(function() open(closed, sig, ts, nonce, body) end,
                       "wecom.core.callback_open: attempt to use a closed crypter")
    end)

    it("hands the plaintext back boxed next to an event when asked to", function()
      local sig, ts, nonce, body = sealed(V1_PLAIN)
      local box, rid, event = open(c, sig, ts, nonce, body, RID, true)
      assert.equal("userdata", type(box))
      assert.is_nil(getmetatable(box))
      assert.equal(V1_PLAIN, core.callback_plaintext(box))
      assert.equal(RID, rid)
      assert.same(decode(V1_PLAIN), event)
      local q = "msg_signature=" .. sig .. "&timestamp=" .. ts .. "&nonce=" .. nonce
      box = core.callback_open_query(c, q, body, nil, true)
      assert.equal(V1_PLAIN, core.callback_plaintext(box))
      -- no event: the plaintext stays a string, for the caller's own parser
      for _, plain in ipairs({ '{"a":1}', "<xml><a></xml>" }) do
        sig, ts, nonce, body = sealed(plain)
        assert.same({ plain, RID }, { open(c, sig, ts, nonce, body, RID, true) })
      end
      assert.has_error(function() core.callback_plaintext(io.stdout) end)
      assert.has_error(function() core.callback_plaintext(nil) end)
    end)

    it("hands back the expected receive id's own string when the decrypted one matches", function()
      local sig, ts, nonce, body = sealed(V1_PLAIN)
      for _, expected in ipairs({ RID, "wwCORQ", "wwCOR", "", 42, false }) do
        local msg, rid, event = open(c, sig, ts, nonce, body, expected)
        assert.equal(V1_PLAIN, msg)
        assert.equal(RID, rid)
        assert.same(decode(V1_PLAIN), event)
      end
    end)

    describe("with the query string (callback_open_query)", function()
      local open_query = core.callback_open_query
      local escape = require("wecom.url").escape

      it("reads the signed parameters as wecom.url.parse_query does", function()
        local nonce = "a+b c/d%e&f"
        local enc = assert(c:encrypt(V1_PLAIN, RID))
        local ts = "1700000000"
        local sig = c:signature(ts, nonce, enc)
        local body = "<xml><Encrypt><![CDATA[" .. enc .. "]]></Encrypt></xml>"
        local n = nonce:gsub("[ /%%&]", function(ch) return ("%%%02X"):format(ch:byte()) end)
        for _, q in ipairs({
          "msg_signature=" .. sig .. "&timestamp=" .. ts .. "&nonce=" .. n,
          "/cb?nonce=" .. n .. "&&msg_signature=" .. sig:upper():lower() .. "&x=1&timestamp=" .. ts .. "&",
          "?a?b&timestamp=" .. ts .. "&nonce=" .. escape(nonce) .. "&msg_signature=" .. escape(sig),
          "msg_signature=" .. sig .. "&timestamp=%3" .. "1" .. ts:sub(2) .. "&nonce=" .. n .. "&MSG_SIGNATURE=x",
        }) do
          local msg, rid, event = open_query(c, q, body, RID)
          assert.equal(V1_PLAIN, msg, q)
          assert.equal(RID, rid)
          assert.same(decode(V1_PLAIN), event)
        end
        -- a percent sign that is not %XX stays, as in wecom.url.unescape
        for _, odd in ipairs({ "%", "%4", "%zz", "%%41", "x%" }) do
          local s2 = c:signature(ts, odd:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end), enc)
          local msg = open_query(c, "msg_signature=" .. s2 .. "&timestamp=" .. ts .. "&nonce=" .. odd, body)
          assert.equal(V1_PLAIN, msg, odd)
        end
      end)

      it("answers false where the general path must read the query", function()
        local sig, ts, nonce, body = sealed(V1_PLAIN)
        local good = "msg_signature=" .. sig .. "&timestamp=" .. ts .. "&nonce=" .. nonce
        for _, q in ipairs({
          "", "msg_signature=" .. sig .. "&timestamp=" .. ts,        -- one missing
          good .. "&nonce=" .. nonce,                                -- one repeated
          good .. "&timestamp",
          "msg%5Fsignature=" .. sig .. "&timestamp=" .. ts .. "&nonce=" .. nonce, -- a key parse_query decodes
          good .. "&a%20b=1",
          "MSG_SIGNATURE=" .. sig .. "&timestamp=" .. ts .. "&nonce=" .. nonce,
        }) do
          assert.is_false(open_query(c, q, body), q)
        end
        assert.is_false(open_query(c, good, "{}"))
        assert.is_false(open_query(c, good, nil))
        assert.is_false(open_query(c, { msg_signature = sig }, body))
        assert.same({ nil, "signature mismatch", -40001 }, { open_query(c, good:gsub("nonce=%d+", "nonce"), body) })
        assert.has_error(function() open_query({}, good, body) end,
                         "wecom.core.callback_open_query: expected a wecom.core.crypter (got table)")
      end)

      it("lets cb:decrypt answer random query strings exactly as its general path does", function()
        -- pieces of queries, right and wrong: the signed values (plain and
        -- percent-encoded), repeats, other names, case variants, stray
        -- '%', '?', '=' and '&'
        local enc = assert(c:encrypt(V1_PLAIN, RID))
        local ts, nonce = "1700000000", "n+/=%"
        local sig = c:signature(ts, nonce, enc)
        local body = "<xml><Encrypt><![CDATA[" .. enc .. "]]></Encrypt></xml>"
        local pieces = {
          "msg_signature=" .. sig, "msg_signature=" .. sig:upper(), "msg_signature=%" .. sig,
          "timestamp=" .. ts, "timestamp=%31" .. ts:sub(2), "timestamp", "timestamp=",
          "nonce=n+/=%25", "nonce=n%2B%2F%3D%25", "nonce=n+/=%", "nonce=n+%2f=%",
          "msg%5Fsignature=" .. sig, "Nonce=x", "nonce%3Dx", "x=1", "=", "", "?", "/cb?", "%", "%%", "a=b=c",
        }
        local seed = 7
        local function rand(n)
          seed = (seed * 16807) % 2147483647
          return seed % n
        end
        local general = general_path { token = TOKEN, aes_key = AES_KEY, receive_id = RID }
        local cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = RID }
        local function outcome(obj, q)
          local event, err = obj:decrypt(q, body)
          if event then
            assert(event.xml)     -- made on first read: compared too
            return event
          end
          return { code = err.code, errmsg = err.errmsg }
        end
        local taken = 0
        for _ = 1, 3000 do
          local parts = {}
          for i = 1, rand(3) do
            parts[i] = pieces[rand(#pieces) + 1]
          end
          if rand(4) ~= 0 then    -- most queries hold the three signed parameters
            parts[#parts + 1] = pieces[1 + rand(3)]
            parts[#parts + 1] = pieces[4 + rand(2)]
            parts[#parts + 1] = pieces[8 + rand(4)]
          end
          for i = #parts, 2, -1 do
            local j = rand(i) + 1
            parts[i], parts[j] = parts[j], parts[i]
          end
          local q = table.concat(parts, rand(8) == 0 and "&&" or "&")
          assert.same(outcome(general, q), outcome(cb, q), q)
          if open_query(c, q, body) then
            taken = taken + 1
          end
        end
        -- the one-call path took a good share of them, right and wrong ones
        assert.is_true(taken > 300, "taken " .. taken)
      end)

      it("takes a query longer than its stack buffer", function()
        local sig, ts, nonce, body = sealed(V1_PLAIN)
        local q = "pad=" .. rep("%41", 400) .. "&msg_signature=" .. sig .. "&timestamp=" .. ts
          .. "&nonce=" .. nonce:gsub(".", function(ch) return ("%%%02X"):format(ch:byte()) end)
        local msg, rid = open_query(c, q, body)
        assert.equal(V1_PLAIN, msg)
        assert.equal(RID, rid)
      end)
    end)

    it("lets cb:decrypt answer exactly as its general path does", function()
      -- A table with the three strings and a query string take the
      -- one-call paths; general_path objects, and a callback object with
      -- max_skew, the general one.
      local cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = RID }
      local listed = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = { "wwOTHER", RID } }
      local general = {
        [cb] = general_path { token = TOKEN, aes_key = AES_KEY, receive_id = RID },
        [listed] = general_path { token = TOKEN, aes_key = AES_KEY, receive_id = { "wwOTHER", RID } },
      }
      local skewed = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = RID, max_skew = 2 ^ 40 }
      local function outcome(obj, query, body)
        local event, err = obj:decrypt(query, body)
        if event then
          assert(event.xml or event.json)     -- made on first read: compared too
          return event
        end
        return { kind = err.kind, code = err.code, errmsg = err.errmsg }
      end
      local plains = { V1_PLAIN, BATCH_JOB, "<xml><a></xml>", "{\"MsgType\":\"text\"}", "<xml><Event/></xml>",
                       "<r><AgentID>0x10</AgentID><CreateTime> 12 </CreateTime><Event><x/></Event></r>" }
      local count = 0
      for _, plain in ipairs(plains) do
        for _, rid in ipairs({ RID, "wwOTHER", "" }) do
          local sig, ts, nonce, body, enc = sealed(plain, rid)
          local bodies = { body, body:gsub("%[CDATA%[ww", "[CDATA[xx", 1), " \n" .. body,
                           "<xml><Encrypt>" .. enc .. "</Encrypt><Encrypt>x</Encrypt></xml>",
                           "<xml><Encrypt a='1'>" .. enc .. "</Encrypt></xml>",
                           body:gsub("Encrypt", "Encrypted"), "" }
          for _, b in ipairs(bodies) do
            for _, s in ipairs({ sig, sig:upper(), "" }) do
              local query = { msg_signature = s, timestamp = ts, nonce = nonce }
              local qs = callback.build_query(query)
              for _, obj in ipairs({ cb, listed }) do
                local expected = outcome(general[obj], query, b)
                assert.same(expected, outcome(general[obj], qs, b))
                assert.same(expected, outcome(obj, query, b))
                assert.same(expected, outcome(obj, qs, b))
                if obj == cb then
                  assert.same(expected, outcome(skewed, query, b))
                end
                for _, odd in ipairs({ qs .. "&nonce=" .. nonce, "x=1&" .. qs:gsub("msg_signature", "msg%%5Fsignature"),
                                       qs:gsub("timestamp=%d+", "timestamp"), "/cb?" .. qs,
                                       (qs:gsub("&nonce", "&NONCE")) }) do
                  assert.same(outcome(general[obj], odd, b), outcome(obj, odd, b), odd)
                end
                count = count + 1
              end
            end
          end
        end
      end
      assert.equal(#plains * 3 * 7 * 3 * 2, count)
    end)
  end)
end)
