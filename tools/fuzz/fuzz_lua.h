/*
 * fuzz_lua.h - shared by the libFuzzer harnesses: one lua_State per process
 * with wecom.core (compiled in) at stack index 1, so every input goes
 * through the module's real entry points, plus helpers to call them and to
 * compare the values they return.
 *
 * A failed check prints what differed and aborts: libFuzzer then saves the
 * input as a crash.
 */
#ifndef FUZZ_LUA_H
#define FUZZ_LUA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_wecom_core(lua_State *L);

#define CORE 1      /* stack index of the module table */

#define FUZZ_CHECK(L, cond, ...)                                            \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz check failed at %s:%d: %s\n  ",           \
                    __FILE__, __LINE__, #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            fuzz_dump_stack(L);                                             \
            abort();                                                        \
        }                                                                   \
    } while (0)

static inline void fuzz_dump_stack(lua_State *L)
{
    int i;

    for (i = 1; i <= lua_gettop(L); i++) {
        fprintf(stderr, "  [%d] %s", i, luaL_typename(L, i));
        if (lua_type(L, i) == LUA_TSTRING || lua_type(L, i) == LUA_TNUMBER) {
            size_t len;
            const char *s = lua_tolstring(L, i, &len);
            fprintf(stderr, " (%zu) %.*s", len, (int)(len > 120 ? 120 : len), s);
        }
        fputc('\n', stderr);
    }
}

static inline lua_State *fuzz_state(void)
{
    static lua_State *L;

    if (L == NULL) {
        L = luaL_newstate();
        if (L == NULL)
            abort();
        luaL_requiref(L, "wecom.core", luaopen_wecom_core, 0);
    }
    lua_settop(L, CORE);
    return L;
}

/* After each input: drop everything but the module and collect, so a
 * leak in C shows up as memory nothing in Lua still refers to. */
static inline void fuzz_done(lua_State *L)
{
    lua_settop(L, CORE);
    lua_gc(L, LUA_GCCOLLECT, 0);
}

/* Pushes core[name]. */
static inline void fuzz_core_fn(lua_State *L, const char *name)
{
    lua_getfield(L, CORE, name);
    if (lua_type(L, -1) != LUA_TFUNCTION) {
        fprintf(stderr, "wecom.core.%s is missing\n", name);
        abort();
    }
}

/* Calls the function below its nargs arguments; a raised error is a
 * finding (the harnesses only pass arguments of the documented types).
 * Returns the number of results, left on the stack. */
static inline int fuzz_call(lua_State *L, int nargs, const char *what)
{
    int base = lua_gettop(L) - nargs - 1;

    if (lua_pcall(L, nargs, LUA_MULTRET, 0) != 0) {
        fprintf(stderr, "%s raised: %s\n", what, lua_tostring(L, -1));
        abort();
    }
    return lua_gettop(L) - base;
}

/* Deep equality of strings, numbers, booleans, nil and tables of those. */
static inline int fuzz_equal(lua_State *L, int a, int b, int depth)
{
    int ta = lua_type(L, a), tb = lua_type(L, b), same;

    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    if (ta != tb)
        return 0;
    if (ta != LUA_TTABLE)
        return lua_rawequal(L, a, b);
    if (depth > 200)
        return 0;
    luaL_checkstack(L, 6, "fuzz_equal");
    /* every key of a is in b with an equal value ... */
    lua_pushnil(L);
    while (lua_next(L, a) != 0) {
        lua_pushvalue(L, -2);
        lua_rawget(L, b);
        same = fuzz_equal(L, -2, -1, depth + 1);
        lua_pop(L, 2);
        if (!same) {
            lua_pop(L, 1);
            return 0;
        }
    }
    /* ... and b has no key a lacks */
    lua_pushnil(L);
    while (lua_next(L, b) != 0) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawget(L, a);
        same = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (!same) {
            lua_pop(L, 1);
            return 0;
        }
    }
    return 1;
}

/* Compares the n values at a.. with the n values at b.. */
static inline int fuzz_equal_n(lua_State *L, int a, int b, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (!fuzz_equal(L, a + i, b + i, 0))
            return 0;
    return 1;
}

/* Splits data at 0xff bytes into at most max fields; returns the count.
 * The last field takes the rest, separators included. */
static inline int fuzz_split(const uint8_t *data, size_t size, const char **field, size_t *len, int max)
{
    int n = 0;
    size_t start = 0, i;

    for (i = 0; i < size && n < max - 1; i++) {
        if (data[i] == 0xff) {
            field[n] = (const char *)data + start;
            len[n++] = i - start;
            start = i + 1;
        }
    }
    field[n] = (const char *)data + start;
    len[n++] = size - start;
    return n;
}

#endif
