// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The timeline of an update, as the new image prints it: the old image's
 * steps (carried in the state blob), the handover itself, the restore
 * steps here and the first completion the guest driver sees.
 */
#include <stdio.h>
#include <unistd.h>

#include "sim-param.h"
#include "vmm.h"

static const char *const upd_mode_name[] = {
	[UPD_NONE] = "none", [UPD_EXEC] = "exec",
	[UPD_FORK] = "fork", [UPD_TRANSFER] = "transfer",
};

static const char *dev_mode(void)
{
	int va = vdpa_sim_param("use_va");

	return va == 1 ? "VA" : va == 0 ? "PA" : "?";
}

static uint64_t save_end_ns(const struct vdpalu_timeline *tl)
{
	uint64_t t = tl->start_ns;
	int s;

	for (s = VDPALU_STEP_SUSPEND; s <= VDPALU_STEP_BLOB_SAVE; s++)
		t += tl->ns[s];
	return t;
}

/* " | NAME N.Nus (COUNT)" at *p, within *left bytes; count < 0: none */
static void append_us(char **p, size_t *left, const char *name, uint64_t ns,
		      int count)
{
	int n;

	if (count >= 0)
		n = snprintf(*p, *left, " | %s %.1fus (%d)", name, ns / 1e3, count);
	else
		n = snprintf(*p, *left, " | %s %.1fus", name, ns / 1e3);
	if (n > 0 && (size_t)n < *left) {
		*p += n;
		*left -= n;
	}
}

/* One line per update, from the old image's suspend to our first I/O. */
void print_timeline(struct vmm *m, uint64_t first_ns)
{
	const struct vdpalu_timeline *tl = &m->dev.tl;
	uint64_t save_end = save_end_ns(tl);
	unsigned int i = m->cfg.done - 1;
	char line[1024], *p = line;
	size_t left = sizeof(line);
	int s;

	for (s = VDPALU_STEP_SUSPEND; s < VDPALU_STEP_MAX; s++) {
		if (s == VDPALU_STEP_BLOB_LOAD)
			append_us(&p, &left, upd_mode_name[m->cfg.mode],
				  m->restore_ns > save_end ? m->restore_ns - save_end : 0, -1);
		if (!tl->ns[s] && s != VDPALU_STEP_NEW_OWNER)
			continue;
		append_us(&p, &left, vdpalu_step_name(s), tl->ns[s],
			  s == VDPALU_STEP_MAP || s == VDPALU_STEP_REMAP ||
			  s == VDPALU_STEP_VRINGS ? (int)tl->count[s] : -1);
	}
	append_us(&p, &left, "first-completion", first_ns - m->restart_ns, -1);
	if (i < MAX_UPDATES) {
		m->cfg.blackout_us[i] = (first_ns - tl->start_ns) / 1000;
		m->cfg.first_us[i] = (first_ns - m->restart_ns) / 1000;
	}
	vmm_log(m, "update %u/%u %s v%u->v%d %s-flow %s%s || blackout %.3f ms, device stopped %.3f ms",
		m->cfg.done, m->cfg.updates, upd_mode_name[m->cfg.mode],
		m->prev_version, VMM_IMAGE_VERSION,
		m->dev.flow == VDPALU_FLOW_RESUME ? "resume" : "reset",
		dev_mode(), line, (first_ns - tl->start_ns) / 1e6,
		(tl->end_ns - tl->start_ns) / 1e6);
}

