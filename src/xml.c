/*
 * xml.c - core.xml_decode: XML into Lua tables, for callback envelopes and
 * events; the expat glue, the per-closure scratch, and the tree-to-table
 * conversion that core.callback_open (crypto.c) shares.
 *
 * Two parsers fill one small C tree (xml.h); only after parsing is the tree
 * turned into tables, so no Lua error can unwind through a parser and a
 * failed parse leaves nothing behind.
 *
 * - The fast scanner (xml_scan.c) takes the plain subset WeCom sends and
 *   gives up on anything else; expat then parses the whole document again,
 *   so every error message and every refusal is expat's.
 * - Expat (expat_parse) records the same tree from its callbacks, which
 *   never touch the Lua state.
 * - The parser and both buffers are kept in a per-closure userdata (upvalue
 *   1 of xml_decode, and of callback_open) and reused, so a typical callback
 *   costs no malloc in C.  If a finalizer re-enters while the scratch is in
 *   use, or a memory error left it marked busy, a fresh one replaces it;
 *   the one in use stays anchored on the stack until its call is done.
 * - No DTD at all: a DOCTYPE stops the parser, so there are no entity
 *   declarations, no entity expansion (billion laughs) and no external
 *   entities.  Attributes, comments and processing instructions are ignored.
 * - opts.parser = "expat" skips the fast scanner; "fast" uses only it and
 *   returns nil, "xml: outside the fast subset" where it gives up (both for
 *   differential tests).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "xml.h"

/* Scratch buffers larger than this are released after the call. */
#define KEEP_BYTES      (64 * 1024)
#define KEEP_NODES      1024

static const char too_deep[] = "nesting deeper than max_depth";

/* ===== recording (expat handlers, no Lua here) ========================= */

static void doc_abort(xml_doc *d, const char *reason)
{
    if (d->abort_reason == NULL)
        d->abort_reason = reason;
    XML_StopParser(d->parser, XML_FALSE);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    xml_doc *d = ud;
    size_t name_len = strlen(name);
    int idx;
    xml_node *n;

    (void)attrs;
    if (d->abort_reason != NULL)
        return;
    if (++d->depth > d->max_depth) {
        doc_abort(d, too_deep);
        return;
    }
    if (d->current != XML_NO_NODE) {
        const xml_node *parent = &d->nodes[d->current];
        /* The parent is no leaf after all: its text so far is dropped. */
        if (parent->first_child == XML_NO_NODE)
            d->len = parent->text_off;
    }
    idx = xml_node_new(d);
    if (idx == XML_NO_NODE || !xml_buf_reserve(d, name_len)) {
        doc_abort(d, "out of memory");
        return;
    }
    n = &d->nodes[idx];
    n->name_src = n->text_src = NULL;
    n->name_off = d->len;
    n->name_len = name_len;
    memcpy(d->buf + d->len, name, name_len);
    d->len += name_len;
    n->text_off = d->len;
    n->text_len = 0;
    xml_node_link(d, idx);
    d->current = idx;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    xml_doc *d = ud;

    (void)name;
    if (d->abort_reason != NULL || d->current == XML_NO_NODE)
        return;
    d->depth--;
    d->current = d->nodes[d->current].parent;
}

/* Character data and CDATA alike.  A leaf's text is always the tail of the
 * buffer, so pieces are appended in place. */
static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    xml_doc *d = ud;
    xml_node *n;

    if (d->abort_reason != NULL || d->current == XML_NO_NODE)
        return;
    n = &d->nodes[d->current];
    if (n->first_child != XML_NO_NODE)
        return;     /* text between child elements: ignored */
    if (!xml_buf_reserve(d, (size_t)len)) {
        doc_abort(d, "out of memory");
        return;
    }
    memcpy(d->buf + d->len, s, (size_t)len);
    d->len += (size_t)len;
    n->text_len += (size_t)len;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name; (void)sysid; (void)pubid; (void)has_internal_subset;
    doc_abort(ud, "DTD not allowed");
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_len, const XML_Char *base,
                                   const XML_Char *sysid, const XML_Char *pubid,
                                   const XML_Char *notation)
{
    (void)name; (void)is_param; (void)value; (void)value_len; (void)base;
    (void)sysid; (void)pubid; (void)notation;
    doc_abort(ud, "entity declarations not allowed");
}

/* Parses s into d's tree with expat.  NULL on success, else a message;
 * for an expat error the message is written to errbuf. */
static const char *expat_parse(xml_doc *d, const char *s, size_t len, int max_depth,
                               char *errbuf)
{
    XML_Parser p;

    if (d->parser == NULL)
        d->parser = XML_ParserCreate(NULL);
    else if (!XML_ParserReset(d->parser, NULL)) {
        XML_ParserFree(d->parser);
        d->parser = XML_ParserCreate(NULL);
    }
    if (d->parser == NULL)
        return "out of memory";
    p = d->parser;
    d->n_nodes = 0;
    d->len = 0;
    d->current = XML_NO_NODE;
    d->depth = 0;
    d->max_depth = max_depth;
    d->abort_reason = NULL;

    /* Reset clears every handler, so they are set per document. */
    XML_SetHashSalt(p, d->salt);
    XML_SetUserData(p, d);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_text);
    XML_SetStartDoctypeDeclHandler(p, on_doctype);
    XML_SetEntityDeclHandler(p, on_entity_decl);
    XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);

    if (XML_Parse(p, s, (int)len, XML_TRUE) != XML_STATUS_OK) {
        if (d->abort_reason != NULL)
            return d->abort_reason;
        snprintf(errbuf, XML_ERRBUF, "%s at line %lu, column %lu",
                 XML_ErrorString(XML_GetErrorCode(p)),
                 (unsigned long)XML_GetCurrentLineNumber(p),
                 (unsigned long)XML_GetCurrentColumnNumber(p));
        return errbuf;
    }
    return NULL;
}

const char *wecom_xml_parse(xml_doc *d, const char *s, size_t len, int max_depth, int parser,
                            char *errbuf)
{
    if (parser != XML_PARSER_EXPAT && wecom_xml_scan(d, s, len, max_depth))
        return NULL;
    if (parser == XML_PARSER_FAST)
        return "outside the fast subset";
    return expat_parse(d, s, len, max_depth, errbuf);
}

void wecom_xml_push_error(lua_State *L, const char *err, int max_depth)
{
    if (err == too_deep)
        lua_pushfstring(L, "xml: %s (%d)", err, max_depth);
    else
        lua_pushfstring(L, "xml: %s", err);
}

/* ===== the scratch userdata ============================================ */

static int scratch_destroy(lua_State *L);

static const wecom_class scratch_class = {
    "wecom.core.xml_scratch", NULL, scratch_destroy, NULL
};

static int scratch_destroy(lua_State *L)
{
    xml_doc *d = luaL_checkudata(L, 1, scratch_class.name);
    if (d->parser != NULL)
        XML_ParserFree(d->parser);
    free(d->nodes);
    free(d->buf);
    memset(d, 0, sizeof *d);
    return 0;
}

xml_doc *wecom_xml_scratch_new(lua_State *L)
{
    xml_doc *d = lua_newuserdata(L, sizeof *d);
    memset(d, 0, sizeof *d);
    /* Expat would otherwise read getrandom() and getenv() for every
     * document; one secret salt per scratch keeps the flooding protection. */
    if (RAND_bytes((unsigned char *)&d->salt, sizeof d->salt) != 1 || d->salt == 0)
        d->salt = (unsigned long)(size_t)d ^ 0x9e3779b97f4a7c15UL;
    wecom_class_register(L, &scratch_class);     /* whichever part asks first */
    luaL_getmetatable(L, scratch_class.name);
    lua_setmetatable(L, -2);
    return d;
}

xml_doc *wecom_xml_scratch_acquire(lua_State *L)
{
    xml_doc *d = lua_touserdata(L, lua_upvalueindex(1));

    if (d->busy) {
        d = wecom_xml_scratch_new(L);
        lua_pushvalue(L, -1);
        lua_replace(L, lua_upvalueindex(1));
    } else {
        lua_pushvalue(L, lua_upvalueindex(1));
    }
    d->busy = 1;
    return d;
}

void wecom_xml_scratch_release(xml_doc *d)
{
    d->busy = 0;
    if (d->cap > KEEP_BYTES) {
        free(d->buf);
        d->buf = NULL;
        d->cap = 0;
    }
    if (d->cap_nodes > KEEP_NODES) {
        free(d->nodes);
        d->nodes = NULL;
        d->cap_nodes = 0;
    }
}

/* ===== conversion to Lua (after parsing) =============================== */

static void push_element(lua_State *L, const xml_doc *d, int idx, int names);

/* Element names as Lua strings, kept in a small table (upvalue 2 of the C
 * functions that build tables here) by a hash of their bytes: the same few
 * names come in every callback, and taking one from the table costs less
 * than interning it again, which in LuaJIT walks a hash chain through cold
 * memory.  Two names on one slot take turns; long names are not kept. */
#define NAME_SLOTS      64
#define NAME_MAX_KEPT   32

void wecom_xml_names_new(lua_State *L)
{
    lua_createtable(L, NAME_SLOTS, 0);
}

static void push_name(lua_State *L, int names, const char *name, size_t len)
{
    const unsigned char *u = (const unsigned char *)name;
    const char *kept;
    size_t kept_len;
    int slot;

    if (len == 0 || len > NAME_MAX_KEPT) {
        lua_pushlstring(L, name, len);
        return;
    }
    slot = (int)((len * 131u + u[0] * 31u + u[len / 2] * 7u + u[len - 1]) % NAME_SLOTS) + 1;
    lua_rawgeti(L, names, slot);
    kept = lua_tolstring(L, -1, &kept_len);
    if (kept != NULL && kept_len == len && memcmp(kept, name, len) == 0)
        return;
    lua_pop(L, 1);
    lua_pushlstring(L, name, len);
    lua_pushvalue(L, -1);
    lua_rawseti(L, names, slot);
}

/* The usual case, checked in C for a few children: no name repeats, so
 * the children go straight into the table without a lookup each. */
static int names_unique(const xml_doc *d, const xml_node *n)
{
    int a, b;

    if (n->n_children > 16)
        return 0;
    for (a = n->first_child; a != XML_NO_NODE; a = d->nodes[a].next_sibling)
        for (b = d->nodes[a].next_sibling; b != XML_NO_NODE; b = d->nodes[b].next_sibling)
            if (d->nodes[a].name_len == d->nodes[b].name_len
                && xml_same_bytes(xml_node_name(d, &d->nodes[a]), xml_node_name(d, &d->nodes[b]),
                                  d->nodes[a].name_len))
                return 0;
    return 1;
}

/* Pushes a table of node idx's children by name; repeats become arrays.
 * The table has room for `extra` more fields.  Nesting is bounded by
 * max_depth at parse time; the stack check covers the recursion. */
static void push_children(lua_State *L, const xml_doc *d, int idx, int extra, int names)
{
    const xml_node *n = &d->nodes[idx];
    int tbl, lists, child;

    luaL_checkstack(L, 8, "xml: nesting too deep for the Lua stack");
    lua_createtable(L, 0, n->n_children + extra);
    tbl = lua_gettop(L);
    if (names_unique(d, n)) {
        for (child = n->first_child; child != XML_NO_NODE; child = d->nodes[child].next_sibling) {
            const xml_node *c = &d->nodes[child];
            push_name(L, names, xml_node_name(d, c), c->name_len);
            push_element(L, d, child, names);
            lua_rawset(L, tbl);
        }
        return;
    }
    /* Names that already hold an array (an element value can itself be a
     * table, so the type cannot tell); created on the first repeat. */
    lua_pushnil(L);
    lists = tbl + 1;
    for (child = n->first_child; child != XML_NO_NODE; child = d->nodes[child].next_sibling) {
        const xml_node *c = &d->nodes[child];

        push_name(L, names, xml_node_name(d, c), c->name_len);      /* key */
        lua_pushvalue(L, -1);
        lua_rawget(L, tbl);                                         /* key, existing */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            push_element(L, d, child, names);
            lua_rawset(L, tbl);
            continue;
        }
        lua_pop(L, 1);                                              /* key */
        if (lua_isnil(L, lists)) {
            lua_newtable(L);
            lua_replace(L, lists);
        }
        lua_pushvalue(L, -1);
        lua_rawget(L, lists);                                       /* key, is_list */
        if (lua_toboolean(L, -1)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_rawget(L, tbl);                                     /* key, list */
            push_element(L, d, child, names);
            lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
            lua_pop(L, 2);
        } else {
            lua_pop(L, 1);
            lua_createtable(L, 2, 0);                               /* key, list */
            lua_pushvalue(L, -2);
            lua_rawget(L, tbl);
            lua_rawseti(L, -2, 1);
            push_element(L, d, child, names);
            lua_rawseti(L, -2, 2);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);                                      /* key, key, list */
            lua_rawset(L, tbl);                                     /* key */
            lua_pushboolean(L, 1);
            lua_rawset(L, lists);
        }
    }
    lua_pop(L, 1);                                                  /* lists */
}

static void push_element(lua_State *L, const xml_doc *d, int idx, int names)
{
    const xml_node *n = &d->nodes[idx];

    if (n->first_child == XML_NO_NODE)
        lua_pushlstring(L, xml_node_text(d, n), n->text_len);
    else
        push_children(L, d, idx, 0, names);
}

void wecom_xml_push_root(lua_State *L, const xml_doc *d, int extra)
{
    push_children(L, d, 0, extra, lua_upvalueindex(2));
}

const xml_node *wecom_xml_only_leaf(const xml_doc *d, const char *name)
{
    size_t name_len = strlen(name);
    const xml_node *found = NULL;
    int child;

    for (child = d->nodes[0].first_child; child != XML_NO_NODE; child = d->nodes[child].next_sibling) {
        const xml_node *c = &d->nodes[child];
        if (c->name_len == name_len && memcmp(xml_node_name(d, c), name, name_len) == 0) {
            if (found != NULL)
                return NULL;
            found = c;
        }
    }
    if (found == NULL || found->first_child != XML_NO_NODE || found->text_len == 0)
        return NULL;
    return found;
}

/* ===== core.xml_decode ================================================= */

static const char *const decode_keys[] = { "max_size", "max_depth", "parser", NULL };
static const char *const parser_names[] = { "auto", "expat", "fast", NULL };

/* core.xml_decode(s [, { max_size =, max_depth =, parser = }])
 *   -> tbl, root_name | nil, err */
static int l_xml_decode(lua_State *L)
{
    size_t len;
    const char *s = wecom_check_string(L, 1, WECOM_FN("xml_decode"), "s", &len);
    lua_Integer max_size = WECOM_MAX_BODY, max_depth = WECOM_MAX_DEPTH;
    int parser = XML_PARSER_AUTO;
    char errbuf[XML_ERRBUF];
    const char *err;
    xml_doc *d;

    if (!lua_isnoneornil(L, 2)) {
        wecom_opts o;
        wecom_opts_init(&o, L, 2, WECOM_FN("xml_decode"), "opts", decode_keys);
        max_size = wecom_opt_field_integer(&o, "max_size", max_size, 0, INT_MAX);
        max_depth = wecom_opt_field_integer(&o, "max_depth", max_depth, 1, 10000);
        parser = wecom_opt_field_choice(&o, "parser", parser_names, XML_PARSER_AUTO);
    }
    if (len > (size_t)max_size) {
        lua_pushnil(L);
        lua_pushfstring(L, "xml: document of %d bytes is over max_size (%d)",
                        (int)(len > INT_MAX ? INT_MAX : len), (int)max_size);
        return 2;
    }
    if (len == 0)
        return wecom_fail(L, "xml: empty document", NULL);

    d = wecom_xml_scratch_acquire(L);
    err = wecom_xml_parse(d, s, len, (int)max_depth, parser, errbuf);
    if (err != NULL) {
        wecom_xml_scratch_release(d);
        lua_pushnil(L);
        wecom_xml_push_error(L, err, (int)max_depth);
        return 2;
    }
    wecom_xml_push_root(L, d, 0);
    lua_pushlstring(L, xml_node_name(d, &d->nodes[0]), d->nodes[0].name_len);
    wecom_xml_scratch_release(d);
    return 2;
}

void wecom_xml_open(lua_State *L)
{
    wecom_xml_scratch_new(L);
    wecom_xml_names_new(L);
    lua_pushcclosure(L, l_xml_decode, 2);
    lua_setfield(L, -2, "xml_decode");
}
