std = "max"
codes = true
max_line_length = 120
exclude_files = { "build/**", ".luarocks/**" }

files["spec/**"] = { std = "+busted" }
files["lua/wecom/emulator/**"] = { globals = { "ngx" } }
files["lua/wecom/ngx.lua"] = { read_globals = { "ngx" } }
files["lua/wecom/transport/ngx.lua"] = { read_globals = { "ngx" } }
files["lua/wecom/store/shdict.lua"] = { read_globals = { "ngx" } }
files["spec/openresty/**"] = { read_globals = { "ngx" } }
files["examples/openresty/**"] = { read_globals = { "ngx" } }
read_globals = { "ngx", "jit" }
