/*
 * ini_oracle.h - libiniparser 4.1 as the oracle of common/ini.c.
 *
 * ini_oracle_check() parses `size` bytes of text with vk_ini_parse() and,
 * when it accepts them, loads the same bytes with iniparser_load() (from a
 * memfd) and compares: iniparser must accept them too, with the same
 * sections and, for every key, the same value, and no key more. Returns
 * 1 when vk_ini_parse() accepted and iniparser agreed, 0 when
 * vk_ini_parse() refused or the text holds more headers than are compared
 * (nothing to compare), -1 with why on a difference. Used by ini_test.c
 * and fuzz/fuzz_ini.c. The oracle is the libiniparser installed, 4.1 on
 * Debian 12: a later one that reads quotes otherwise would show here.
 */
#ifndef VK_INI_ORACLE_H
#define VK_INI_ORACLE_H

#include <stddef.h>

int ini_oracle_check(const char *text, size_t size, char *why, size_t why_size);

#endif
