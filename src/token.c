/* token.c - placeholder until this part lands. */
#include "wecom.h"

void wecom_token_open(lua_State *L)
{
    (void)L;
}
