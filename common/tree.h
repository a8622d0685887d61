/*
 * tree.h - organizations, locations and machines, and the rules that keep
 * the tree whole.
 *
 * The changes run inside the caller's vk_txn and record their events. A
 * resource with children (locations of an organization, machines of a
 * location) or with grants on it is never deleted, nor is this host's
 * machine. Names must pass vk_name_valid().
 */
#ifndef VK_TREE_H
#define VK_TREE_H

#include "txn.h"
#include "vk.h"

enum vk_kind {
	VK_KIND_ORGANIZATION,
	VK_KIND_LOCATION,
	VK_KIND_MACHINE,
};

/* "organization", "location", "machine". */
const char *vk_kind_name(enum vk_kind k);
/* 0 and *out set for one of those names, -1 otherwise. */
int vk_kind_parse(const char *type, enum vk_kind *out);

/*
 * VK_OK if a resource of that type exists; VK_ERR_NOTFOUND, or
 * VK_ERR_USAGE for a malformed ID or unknown type, with a message.
 */
vk_rc vk_resource_exists(sqlite3 *db, const char *type, const char *id, char err[VK_ERRLEN]);

/* A new resource named `name` under `parent` (NULL for an organization); its ID in id. */
vk_rc vk_tree_create(struct vk_txn *t, enum vk_kind k, const char *name, const char *parent,
                     char id[VK_UUID_STRLEN + 1], char err[VK_ERRLEN]);

vk_rc vk_tree_rename(struct vk_txn *t, enum vk_kind k, const char *id, const char *name,
                     char err[VK_ERRLEN]);

/*
 * Moves machine to location (another one, maybe of another organization);
 * its record is published again, and the keys of its former scopes leave
 * its replica there (SPEC §8). Its bus identity is the caller's (identity.h).
 */
vk_rc vk_tree_move(struct vk_txn *t, const char *machine, const char *location,
                   char err[VK_ERRLEN]);

/*
 * Deletes a resource; VK_ERR_CONFLICT when it has children or grants, or
 * is this host's machine: `configured` ([machine] id, or NULL) or the one
 * the store records.
 */
vk_rc vk_tree_delete(struct vk_txn *t, enum vk_kind k, const char *id, const char *configured,
                     char err[VK_ERRLEN]);

/*
 * keyadm init's hierarchy: an organization, a location and a machine named
 * names[0..2], the machine recorded as this host's. When the store already
 * records a machine, nothing is created, *created is 0 and host holds the
 * recorded ID (whichever host recorded it); otherwise host holds the new
 * machine's.
 */
vk_rc vk_tree_init(struct vk_txn *t, const char *const names[3], char host[VK_UUID_STRLEN + 1],
                   int *created, char err[VK_ERRLEN]);

#endif
