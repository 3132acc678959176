/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Giving up capabilities the daemon turns out not to need.  Returns codes,
 * never logs.
 */
#ifndef IPMODD_CAPS_H
#define IPMODD_CAPS_H

#include <stdint.h>

/* Bits of caps_drop()'s mask: 1ULL << CAP_x. */
#define CAPS_ALL UINT64_MAX

/*
 * Remove the capabilities in mask from the effective, permitted and
 * inheritable sets (the ambient set follows: it cannot hold what is not
 * permitted), so that nothing this process runs or becomes gets them back
 * (without file capabilities; the unit sets NoNewPrivileges=).  The bounding
 * set is left alone: dropping from it needs CAP_SETPCAP, and without the
 * permitted bit it grants nothing.  Lowering needs no privilege.
 */
int caps_drop(uint64_t mask);

#endif
