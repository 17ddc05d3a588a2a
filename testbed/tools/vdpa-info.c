// SPDX-License-Identifier: GPL-2.0
/*
 * vdpa-info: print what a vhost-vdpa device offers, by name.
 *
 * Used by `make demo` and for debugging in `make shell`: the backend
 * features line is the first thing to look at when a live update is
 * refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/vhost.h>

struct bit_name {
	unsigned int bit;
	const char *name;
};

static const struct bit_name backend_bits[] = {
	{ VHOST_BACKEND_F_IOTLB_MSG_V2, "IOTLB_MSG_V2" },
	{ VHOST_BACKEND_F_IOTLB_BATCH, "IOTLB_BATCH" },
	{ VHOST_BACKEND_F_IOTLB_ASID, "IOTLB_ASID" },
	{ VHOST_BACKEND_F_SUSPEND, "SUSPEND" },
	{ VHOST_BACKEND_F_RESUME, "RESUME" },
	{ VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK, "ENABLE_AFTER_DRIVER_OK" },
	{ VHOST_BACKEND_F_DESC_ASID, "DESC_ASID" },
	{ VHOST_BACKEND_F_IOTLB_PERSIST, "IOTLB_PERSIST" },
	{ VHOST_BACKEND_F_NEW_OWNER, "NEW_OWNER" },
	{ VHOST_BACKEND_F_IOTLB_REMAP, "IOTLB_REMAP" },
};

static void print_bits(const char *what, uint64_t v,
		       const struct bit_name *names, size_t n)
{
	printf("  %-17s 0x%016llx", what, (unsigned long long)v);
	for (unsigned int bit = 0; bit < 64; bit++) {
		const char *name = NULL;

		if (!(v & (1ULL << bit)))
			continue;
		for (size_t i = 0; i < n; i++)
			if (names[i].bit == bit)
				name = names[i].name;
		if (name)
			printf(" %s", name);
		else
			printf(" bit%u", bit);
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	uint64_t features, backend;
	uint32_t id, nvqs = 0, ngroups = 0;
	unsigned int nas = 0;
	struct vhost_vdpa_iova_range range;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: vdpa-info /dev/vhost-vdpa-N\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "vdpa-info: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (ioctl(fd, VHOST_VDPA_GET_DEVICE_ID, &id) ||
	    ioctl(fd, VHOST_GET_FEATURES, &features) ||
	    ioctl(fd, VHOST_GET_BACKEND_FEATURES, &backend) ||
	    ioctl(fd, VHOST_VDPA_GET_IOVA_RANGE, &range)) {
		fprintf(stderr, "vdpa-info: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	ioctl(fd, VHOST_VDPA_GET_VQS_COUNT, &nvqs);
	ioctl(fd, VHOST_VDPA_GET_GROUP_NUM, &ngroups);
	ioctl(fd, VHOST_VDPA_GET_AS_NUM, &nas);
	printf("%s: virtio device id %u (%s), %u virtqueues, %u groups, %u address spaces\n",
	       argv[1], id, id == 1 ? "net" : id == 2 ? "block" : "other",
	       nvqs, ngroups, nas);
	printf("  %-17s 0x%llx-0x%llx\n", "iova range",
	       (unsigned long long)range.first, (unsigned long long)range.last);
	print_bits("virtio features", features, NULL, 0);
	print_bits("backend features", backend, backend_bits,
		   sizeof(backend_bits) / sizeof(backend_bits[0]));
	close(fd);
	return 0;
}
