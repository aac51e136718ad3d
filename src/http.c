/* http.c - placeholder until this part lands. */
#include "wecom.h"

void wecom_http_open(lua_State *L)
{
    (void)L;
}
