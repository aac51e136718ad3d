/*
 * compat.h - the few Lua C API differences between Lua 5.1/LuaJIT and 5.4
 * that the core uses.  Kept hidden so the shims never clash with another
 * module's symbols.
 */
#ifndef WECOM_COMPAT_H
#define WECOM_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502

#define lua_rawlen(L, i)        lua_objlen((L), (i))
#define lua_absindex(L, i)      ((i) > 0 || (i) <= LUA_REGISTRYINDEX ? (i) : lua_gettop(L) + (i) + 1)
#ifndef luaL_newlib
#define luaL_newlibtable(L, l)  lua_createtable((L), 0, sizeof(l) / sizeof((l)[0]) - 1)
#define luaL_newlib(L, l)       (luaL_newlibtable((L), (l)), luaL_setfuncs((L), (l), 0))
#endif

#if defined(__has_include)
#if __has_include(<luajit.h>)
#include <luajit.h>
#endif
#endif
#if !defined(LUAJIT_VERSION_NUM) || LUAJIT_VERSION_NUM < 20100
/* LuaJIT 2.1 (OpenResty's luajit2) already exports these two. */
#define WECOM_NEED_SETFUNCS 1
#endif

#ifdef WECOM_NEED_SETFUNCS
static inline void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name != NULL; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

static inline void *luaL_testudata(lua_State *L, int i, const char *tname)
{
    void *p = lua_touserdata(L, i);
    if (p == NULL || !lua_getmetatable(L, i))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}
#endif

#endif /* LUA_VERSION_NUM < 502 */

#endif /* WECOM_COMPAT_H */
