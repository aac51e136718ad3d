/* xml.c - placeholder until this part lands. */
#include "wecom.h"

void wecom_xml_open(lua_State *L)
{
    (void)L;
}
