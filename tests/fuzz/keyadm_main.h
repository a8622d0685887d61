/*
 * keyadm_main.h - keyadm's main(), renamed for fuzz_keyadm_args: its
 * sources are compiled with -Dmain=keyadm_main and this file included.
 */
#ifndef VK_KEYADM_MAIN_H
#define VK_KEYADM_MAIN_H

int keyadm_main(int argc, char **argv);

#endif
