rockspec_format = "3.0"
package = "wecom"
version = "dev-1"
source = {
   url = "git+file:///dev/null",
}
description = {
   summary = "WeCom (企业微信) cross-corporation SDK: 上下游, 企业互联, corpgroup",
   detailed = [[
A C core (libcurl, OpenSSL, expat) with a thin Lua layer for WeCom's
upstream/downstream chains, linked corps and shared apps; callbacks, token
stores, OpenResty integration and a local WeCom emulator.]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.1, < 5.5",
}
external_dependencies = {
   CURL = { library = "curl" },
   CRYPTO = { library = "crypto" },
   EXPAT = { header = "expat.h", library = "expat" },
   HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
   type = "builtin",
   modules = {
      ["wecom.core"] = {
         sources = { "src/core.c", "src/crypto.c", "src/xml.c", "src/http.c", "src/token.c",
            "src/redis.c", "src/flock.c" },
         libraries = { "curl", "crypto", "expat", "hiredis", "pthread" },
         incdirs = { "src", "$(EXPAT_INCDIR)", "$(HIREDIS_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(CRYPTO_LIBDIR)", "$(EXPAT_LIBDIR)", "$(HIREDIS_LIBDIR)" },
         defines = { "_GNU_SOURCE" },
      },
      ["wecom"] = "lua/wecom/init.lua",
      ["wecom.errors"] = "lua/wecom/errors.lua",
   },
   install = {
      bin = { "bin/wecom-emulator" },
   },
   copy_directories = { "examples" },
}
test = {
   type = "busted",
}
