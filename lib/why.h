/*
 * The one way dgw writes a sentence into a caller's `why` buffer.
 * Internal to dgw.
 */
#ifndef DGW_WHY_H
#define DGW_WHY_H

#include <stddef.h>

/* printf into `why` (cut to `why_size` bytes, NUL-terminated); nothing
 * when `why` is NULL or `why_size` is 0. */
void dgw_set_why(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* DGW_WHY_H */
