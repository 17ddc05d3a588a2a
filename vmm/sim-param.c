// SPDX-License-Identifier: GPL-2.0-or-later
/* vdpa_sim's boolean module parameters (use_va, batch_mapping). */
#include <stdio.h>

#include "sim-param.h"

int vdpa_sim_param(const char *name)
{
	char path[128];
	FILE *f;
	int c;

	snprintf(path, sizeof(path), "/sys/module/vdpa_sim/parameters/%s", name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	c = fgetc(f);
	fclose(f);
	return c == 'Y' || c == '1' ? 1 : c == 'N' || c == '0' ? 0 : -1;
}
