/*
 * vk.c - roles and error messages.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vk.h"

static const char *const role_names[] = {
    [VK_ROLE_NONE] = "none",
    [VK_ROLE_VIEWER] = "viewer",
    [VK_ROLE_OPERATOR] = "operator",
    [VK_ROLE_OWNER] = "owner",
};

vk_role
vk_role_parse(const char *s)
{
	for (int r = VK_ROLE_VIEWER; r <= VK_ROLE_OWNER; r++)
		if (s != NULL && strcmp(s, role_names[r]) == 0)
			return (vk_role)r;
	return VK_ROLE_NONE;
}

const char *
vk_role_name(vk_role r)
{
	if (r < VK_ROLE_NONE || r > VK_ROLE_OWNER)
		return role_names[VK_ROLE_NONE];
	return role_names[r];
}

void
vk_seterr(char *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err, VK_ERRLEN, fmt, ap);
	va_end(ap);
}
