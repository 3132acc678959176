/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * netem's built-in delay distribution tables, as iproute2 generates them
 * (src/netem-tables.c, written by tools/gen-netem-tables.c): NETEM_TABLE_SIZE
 * deviations scaled by NETEM_DIST_SCALE, indexed by a uniform random number.
 */
#ifndef IPMODD_NETEM_TABLES_H
#define IPMODD_NETEM_TABLES_H

#include <stdint.h>

#define NETEM_TABLE_SIZE 4096
#define NETEM_DIST_SCALE 8192

extern const int16_t netem_pareto[NETEM_TABLE_SIZE];
extern const int16_t netem_paretonormal[NETEM_TABLE_SIZE];

#endif
