/*
 * Pure helpers of the LDAP locator source: RFC 4533 (content
 * synchronization) control and message encoding and decoding, and the
 * parsing of a database entry's copies attribute. No I/O, no global state:
 * tests/unit/test_ldap_sync.c drives them.
 */
#ifndef GW_LOCATOR_LDAP_SYNC_H
#define GW_LOCATOR_LDAP_SYNC_H

#include <sys/time.h>
#include <ldap.h>
#include <stdbool.h>
#include <stddef.h>

/* The value of a Sync Request Control (RFC 4533 2.2):
   SEQUENCE { mode ENUMERATED, cookie OCTET STRING OPTIONAL, reloadHint BOOLEAN DEFAULT FALSE }.
   mode: LDAP_SYNC_REFRESH_ONLY or LDAP_SYNC_REFRESH_AND_PERSIST. cookie may be
   NULL or empty (omitted). *out gets a malloc'ed value (ber_memfree(out->bv_val)).
   Returns 0, or -1. */
int gw_sync_request_encode(int mode, const struct berval *cookie, bool reload_hint,
                           struct berval *out);
/* Decode a Sync Request Control's value (for the tests and the fuzzer). */
int gw_sync_request_decode(const struct berval *value, int *mode_r, struct berval *cookie_r,
                           bool *reload_hint_r);

/* Sync State Control (2.3): state (LDAP_SYNC_PRESENT/ADD/MODIFY/DELETE),
   the entry's UUID (16 bytes), and an optional cookie (cookie_r->bv_len 0
   when absent; bv_val malloc'ed otherwise, ber_memfree). */
int gw_sync_state_decode(const struct berval *value, int *state_r, unsigned char uuid_r[16],
                         struct berval *cookie_r);
/* Encode one (tests; and to play a server in the unit tests). */
int gw_sync_state_encode(int state, const unsigned char uuid[16], const struct berval *cookie,
                         struct berval *out);

/* Sync Info Message (2.5), the value of an intermediate response. */
enum gw_sync_info_kind {
    GW_SYNC_NEW_COOKIE,
    GW_SYNC_REFRESH_DELETE,
    GW_SYNC_REFRESH_PRESENT,
    GW_SYNC_ID_SET,
};
struct gw_sync_info {
    enum gw_sync_info_kind kind;
    struct berval cookie;      /* bv_len 0: none; else malloc'ed */
    bool refresh_done;         /* refreshDelete / refreshPresent (default TRUE) */
    bool refresh_deletes;      /* syncIdSet (default FALSE) */
    struct berval *uuids;      /* syncIdSet: 16-byte values */
    size_t nuuids;
};
int gw_sync_info_decode(const struct berval *value, struct gw_sync_info *info);
void gw_sync_info_free(struct gw_sync_info *info);
/* Encode one (tests). uuids: nuuids values of 16 bytes. */
int gw_sync_info_encode(const struct gw_sync_info *info, struct berval *out);

/* Sync Done Control (2.4) on the final result: cookie, refreshDeletes. */
int gw_sync_done_decode(const struct berval *value, struct berval *cookie_r,
                        bool *refresh_deletes_r);

/*
 * A database's copies, from the values of its copies attribute, into
 * server names in activation-preference order (malloc'ed array of
 * malloc'ed strings, *n_r entries). Each value is "PREFERENCE SERVER"
 * (docs/ldap/gateway.schema: "1 mbx1"; "1:mbx1" is accepted too): lower
 * preference first, ties in the order the values came. A value without a
 * number may also hold a comma-separated list, "mbx1,mbx2", in order
 * (after every numbered value). A server named twice keeps its first
 * place. Returns 0, or -1 with a static *error_r (nothing allocated).
 */
int gw_copies_parse(const struct berval *const *vals, size_t nvals, char ***copies_r,
                    size_t *n_r, const char **error_r);
void gw_copies_free(char **copies, size_t n);

#endif
