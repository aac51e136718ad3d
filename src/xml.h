/*
 * xml.h - the parsed-XML tree, private to the core: filled by the fast
 * scanner (xml_scan.c) or by expat (xml.c), turned into Lua tables by
 * xml.c, and read by core.callback_open (crypto.c).
 *
 * Nodes live in one array; a name or text either points into the input
 * (the fast scanner) or lies in the doc's byte buffer (expat, and texts the
 * scanner had to join).  Parsing never touches the Lua state, so no Lua
 * error can unwind through a parser; tables are built afterwards.
 */
#ifndef WECOM_XML_H
#define WECOM_XML_H

#include <stdlib.h>

#include <expat.h>

#include "wecom.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define XML_NO_NODE (-1)

typedef struct xml_node {
    /* In the input (*_src set) or in the doc's buffer at *_off. */
    const char *name_src, *text_src;
    size_t name_off, name_len;
    size_t text_off, text_len;      /* text of a leaf (ignored once it has children) */
    int parent, first_child, next_sibling, last_child;
    int n_children;
} xml_node;

typedef struct xml_doc {
    XML_Parser parser;              /* reused through XML_ParserReset */
    xml_node *nodes;
    int n_nodes, cap_nodes;
    char *buf;
    size_t len, cap;
    int current;                    /* the open element, XML_NO_NODE outside the root */
    int depth, max_depth;
    const char *abort_reason;       /* set when a handler stopped the parser */
    unsigned long salt;             /* expat hash salt, random per scratch */
    int busy;
} xml_doc;

/* Room for extra more bytes in the buffer; 0 when out of memory. */
static inline int xml_buf_reserve(xml_doc *d, size_t extra)
{
    size_t need = d->len + extra, cap;
    char *p;

    if (need <= d->cap)
        return 1;
    cap = d->cap ? d->cap : 1024;
    while (cap < need)
        cap *= 2;
    p = realloc(d->buf, cap);
    if (p == NULL)
        return 0;
    d->buf = p;
    d->cap = cap;
    return 1;
}

/* A new node's index (its fields unset), or XML_NO_NODE when out of memory. */
static inline int xml_node_new(xml_doc *d)
{
    if (d->n_nodes == d->cap_nodes) {
        int cap = d->cap_nodes ? d->cap_nodes * 2 : 64;
        xml_node *p = realloc(d->nodes, (size_t)cap * sizeof *p);
        if (p == NULL)
            return XML_NO_NODE;
        d->nodes = p;
        d->cap_nodes = cap;
    }
    return d->n_nodes++;
}

/* Links node idx as the last child of d->current (if any). */
static inline void xml_node_link(xml_doc *d, int idx)
{
    xml_node *n = &d->nodes[idx];

    n->parent = d->current;
    n->first_child = n->last_child = n->next_sibling = XML_NO_NODE;
    n->n_children = 0;
    if (d->current != XML_NO_NODE) {
        xml_node *parent = &d->nodes[d->current];
        if (parent->first_child == XML_NO_NODE)
            parent->first_child = idx;
        else
            d->nodes[parent->last_child].next_sibling = idx;
        parent->last_child = idx;
        parent->n_children++;
    }
}

/* Names and markup are a few bytes long: a loop beats a call to memcmp. */
static inline int xml_same_bytes(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static inline const char *xml_node_name(const xml_doc *d, const xml_node *n)
{
    return n->name_src != NULL ? n->name_src : d->buf + n->name_off;
}

static inline const char *xml_node_text(const xml_doc *d, const xml_node *n)
{
    return n->text_src != NULL ? n->text_src : d->buf + n->text_off;
}

/* xml_scan.c: parses s into d if it lies in the fast subset: 1, else 0
 * (the tree is then garbage and expat must parse). */
int wecom_xml_scan(xml_doc *d, const char *s, size_t len, int max_depth);

/* xml.c */
enum { XML_PARSER_AUTO, XML_PARSER_EXPAT, XML_PARSER_FAST };
#define XML_ERRBUF 160

/* Parses s into d: the fast scanner first (unless parser is EXPAT), expat
 * when it gives up (unless parser is FAST).  NULL, or the message to show
 * after "xml: " (perhaps written to errbuf, XML_ERRBUF bytes). */
const char *wecom_xml_parse(xml_doc *d, const char *s, size_t len, int max_depth, int parser,
                            char *errbuf);
/* Pushes "xml: <err>" for a message from wecom_xml_parse. */
void wecom_xml_push_error(lua_State *L, const char *err, int max_depth);
/* Pushes the root's children as a table (as xml_decode returns it), with
 * room for `extra` more fields.  The calling C closure's upvalue 2 is its
 * table of element names (wecom_xml_names_new). */
void wecom_xml_push_root(lua_State *L, const xml_doc *d, int extra);
/* Pushes an empty table of element names, to become upvalue 2 of a C
 * closure that calls wecom_xml_push_root. */
void wecom_xml_names_new(lua_State *L);
/* The root's one child element called name, if it is a leaf with text. */
const xml_node *wecom_xml_only_leaf(const xml_doc *d, const char *name);

/* A per-closure scratch doc (parser and buffers reused between calls):
 * wecom_xml_scratch_new pushes a fresh one, to become upvalue 1 of a C
 * closure; acquire marks the closure's scratch busy and pushes it (a
 * finalizer re-entering meanwhile gets a fresh one); release after use. */
xml_doc *wecom_xml_scratch_new(lua_State *L);
xml_doc *wecom_xml_scratch_acquire(lua_State *L);
void wecom_xml_scratch_release(xml_doc *d);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* WECOM_XML_H */
