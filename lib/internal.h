/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvdpalu internals shared by its files and the unit tests. */
#ifndef VDPALU_INTERNAL_H
#define VDPALU_INTERNAL_H

#include <sys/types.h>

#include "vdpalu.h"

/* Set errno to @err and the thread's message; return -1. */
int vdpalu_fail(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void vdpalu_clear_error(void);

int vdpalu_ioctl(struct vdpalu_dev *dev, unsigned long req, void *arg,
		 const char *what);
int vdpalu_iotlb(struct vdpalu_dev *dev, uint8_t type, uint64_t iova,
		 uint64_t size, uint64_t uaddr, uint8_t perm);
int vdpalu_iotlb_batch(struct vdpalu_dev *dev, uint8_t type);
int vdpalu_check_shared(int fd, uint64_t offset, const void *addr,
			uint64_t size);
int vdpalu_check_handover(const struct vdpalu_dev *dev, enum vdpalu_flow flow);
int vdpalu_set_cloexec(int fd, bool on);
int vdpalu_set_fds_cloexec(struct vdpalu_dev *dev, bool cloexec);
int vdpalu_vq_program(struct vdpalu_dev *dev, unsigned int idx);
/* ACKNOWLEDGE|DRIVER, @features, FEATURES_OK, and FEATURES_OK read back. */
int vdpalu_set_features(struct vdpalu_dev *dev, uint64_t features);

/* Tell the step hook (vdpalu_set_step_hook()) that @point is passed. */
void vdpalu_passed(const char *point);
/* The steps a restore and a pre-staged take-over share. */
void vdpalu_step_time(struct vdpalu_dev *dev, enum vdpalu_step s, uint64_t t,
		      uint32_t count);
/* VHOST_NEW_OWNER, the message saying what its errno usually means. */
int vdpalu_new_owner(struct vdpalu_dev *dev);
/* Ack the backend features of @want the device offers (backend_offered). */
int vdpalu_ack_backend(struct vdpalu_dev *dev, uint64_t want);

/*
 * State blob, version 1. Little-endian, fixed-width fields, no pointers.
 * The crc covers the whole blob with the crc field zero.  Fds are stored
 * as indexes into fdtab so a receiver of SCM_RIGHTS can substitute its
 * own numbers.
 */
#define VDPALU_BLOB_MAGIC	0x554c4456	/* "VDLU" */
#define VDPALU_BLOB_VERSION	1

struct vdpalu_blob_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_len;	/* sizeof(struct vdpalu_blob_hdr) */
	uint32_t len;		/* whole blob */
	uint32_t crc;
	uint64_t save_ns;	/* CLOCK_MONOTONIC when the save finished */
	uint32_t device_id;
	uint32_t nvqs;
	uint64_t features;
	uint64_t backend_features;
	uint8_t status;		/* to restore (DRIVER_OK included) */
	uint8_t flow;
	uint8_t nr_vqs;		/* entries that follow */
	uint8_t nr_regions;
	uint8_t nr_fds;
	uint8_t dev_fd;		/* fdtab index */
	uint16_t app_len;
	struct vdpalu_timeline tl;	/* of the save */
} __attribute__((packed));

struct vdpalu_blob_vq {
	uint16_t num;
	uint16_t base;
	uint8_t enabled;
	uint8_t kick_fd;	/* fdtab index */
	uint8_t call_fd;
	uint8_t idx;		/* vq index in the device */
	uint64_t desc, avail, used;
} __attribute__((packed));

struct vdpalu_blob_region {
	uint8_t fd;		/* fdtab index */
	uint8_t perm;
	uint16_t pad;
	uint32_t pad2;
	uint64_t offset, size, iova;
	uint64_t old_addr;	/* informative: where the old image had it */
} __attribute__((packed));

/* Upper bound of an encoded blob. */
#define VDPALU_BLOB_MAX							\
	(sizeof(struct vdpalu_blob_hdr) +				\
	 VDPALU_MAX_VQS * sizeof(struct vdpalu_blob_vq) +		\
	 VDPALU_MAX_REGIONS * sizeof(struct vdpalu_blob_region) +	\
	 (1 + 2 * VDPALU_MAX_VQS + VDPALU_MAX_REGIONS) * sizeof(int32_t) + \
	 VDPALU_APP_MAX)

uint32_t vdpalu_crc32(const void *buf, size_t len);
/* Encode @dev (configured vqs, regions) and @app into @buf; return length. */
ssize_t vdpalu_blob_encode(const struct vdpalu_dev *dev, const void *app,
			   size_t app_len, void *buf, size_t buf_len);
/*
 * Decode and validate @buf into @dev (fds per fdtab, or @fds when given),
 * copy the app payload to @app.  Changes nothing in @dev on failure.
 */
int vdpalu_blob_decode(const void *buf, size_t len, const int *fds,
		       unsigned int nr_fds, struct vdpalu_dev *dev,
		       void *app, size_t *app_len);
/* Encode @dev and @app into @fd from offset 0 and seal it. */
int vdpalu_blob_write(const struct vdpalu_dev *dev, int fd, const void *app,
		      size_t app_len);
/* Read a whole blob from @fd (from offset 0) into @buf. */
ssize_t vdpalu_blob_read(int fd, void *buf, size_t buf_len);
/* Read and decode the blob in @fd into @dev as vdpalu_blob_decode(); its length. */
ssize_t vdpalu_blob_load(int fd, const int *fds, unsigned int nr_fds,
			 struct vdpalu_dev *dev, void *app, size_t *app_len);

#endif /* VDPALU_INTERNAL_H */
