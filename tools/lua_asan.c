/*
 * lua_asan.c - a minimal lua5.4 interpreter for `make check-asan`.
 *
 * Linked with AddressSanitizer/UBSan itself, so the sanitized wecom.core can
 * be loaded without LD_PRELOAD: the processes the specs start (node, nginx,
 * cc, ...) then run normally instead of inheriting the sanitizer runtime.
 *
 * usage: lua_asan script.lua [args...]
 *        lua_asan -e code
 */
#include <stdio.h>
#include <stdlib.h>

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

int main(int argc, char **argv)
{
    lua_State *L;
    int i, status;

    if (argc < 2 || (argv[1][0] == '-' && (argv[1][1] != 'e' || argc != 3))) {
        fprintf(stderr, "usage: %s script.lua [args...] | -e code\n", argv[0]);
        return 2;
    }
    /* This process checks for leaks at exit (ASAN_OPTIONS was read at
     * start-up); the processes the specs spawn (examples, fleet workers)
     * run the same code and skip it: LeakSanitizer's exit-time tracer
     * occasionally crashes in short-lived processes. */
    {
        const char *opts = getenv("ASAN_OPTIONS");
        char child_opts[512];
        snprintf(child_opts, sizeof child_opts, "%s%sdetect_leaks=0",
                 opts ? opts : "", opts && *opts ? ":" : "");
        setenv("ASAN_OPTIONS", child_opts, 1);
    }

    L = luaL_newstate();
    if (L == NULL)
        return 1;
    luaL_openlibs(L);

    /* arg[-1] = interpreter, arg[0] = script, arg[1..] = its arguments */
    lua_createtable(L, argc - 2, 2);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");

    lua_pushcfunction(L, traceback);
    if (argv[1][0] == '-') {
        status = luaL_loadstring(L, argv[2]);
        argc = 2;  /* no script arguments */
    } else {
        status = luaL_loadfile(L, argv[1]);
    }
    if (status == LUA_OK) {
        for (i = 2; i < argc; i++)
            lua_pushstring(L, argv[i]);
        status = lua_pcall(L, argc - 2, 0, 1);
    }
    if (status != LUA_OK)
        fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
    lua_close(L);
    return status == LUA_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
