/*
 * The ldap locator source (locator.source: ldap), per worker: database
 * entries -- name, copies in activation-preference order, active server --
 * kept from the directory by an RFC 4533 refreshAndPersist search on the
 * worker's own LDAP pool (core/ldap/ldap_conn.h), or by a full search every
 * locator.ldap.refresh where the server offers no sync. A moved active
 * copy goes through gw_locator_moved(), as an operator's switchover does.
 */
#ifndef GW_LOCATOR_LDAP_SOURCE_H
#define GW_LOCATOR_LDAP_SOURCE_H

#include <stdio.h>

#include "../core.h"

int gw_locldap_start(const struct gw_config *conf, char **error_r);
void gw_locldap_stop(void);
const struct gw_conf_database *gw_locldap_database(const char *name);
/* "database NAME active SERVER copies A B" lines, then one "ldap: ..." line. */
void gw_locldap_describe(FILE *f);

/* Switchover: write the active attribute of the database's entry (LDAP
   modify as the service account). cb gets NULL on success (the change is
   then applied here too, and reaches the other workers and gateways
   through their searches), else the reason. Returns NULL with *error_r
   when it cannot even be tried. */
typedef void gw_locldap_write_cb(void *arg, const char *error);
struct gw_locldap_write;
struct gw_locldap_write *gw_locldap_switchover(const char *database, const char *server,
                                               gw_locldap_write_cb *cb, void *arg,
                                               const char **error_r);
void gw_locldap_write_cancel(struct gw_locldap_write **w);

/* locator.c: the database's active copy moved from `from` to `to` (log,
   close the sessions on the old copy over move_close_window). */
void gw_locator_moved(const char *database, const char *from, const char *to);

#endif
