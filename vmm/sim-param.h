/* SPDX-License-Identifier: GPL-2.0-or-later */
/* How vdpa_sim was booted: the one reader of its module parameters. */
#ifndef SIM_PARAM_H
#define SIM_PARAM_H

/* 1 for Y or 1, 0 for N or 0, -1 when vdpa_sim has no such parameter. */
int vdpa_sim_param(const char *name);

#endif /* SIM_PARAM_H */
