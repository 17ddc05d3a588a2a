// SPDX-License-Identifier: GPL-2.0
/*
 * init (PID 1) of the nested guest that QEMU live-updates: it sends
 * numbered raw Ethernet frames to its own MAC on eth0 as fast as the
 * device takes them (vdpa_sim_net loops TX back to RX), checks every echo
 * and reports on the console:
 *
 *   frames: boot <id> start total N mac M
 *   frames: boot <id> progress sent S echoed E lost L dup D reordered R maxgap_us G
 *   frames: boot <id> done sent S echoed E lost L dup D reordered R maxgap_us G
 *
 * Every frame carries the boot id (a random number drawn at boot), so a
 * guest that rebooted during the update shows another id, and its counters
 * start again from 0.  An echo must be exactly the next number expected:
 * anything else counts as lost (a gap), duplicated or reordered.  maxgap_us
 * is the longest time between two echoes, on the guest's clock.
 *
 * At most WINDOW frames are in flight: vdpa_sim_net drops a frame when the
 * receive ring has no buffer, and such a drop is not what is measured here.
 *
 * Kernel command line: frames=N (default 20000); rate=R, at most R frames
 * a second on average (default 0: as fast as the device takes them).  A
 * steady rate makes the frames last the same time on a fast machine as on
 * a slow one, so a test can size its frame count for the steps it runs.
 * The guest powers off when all frames came back, or 20 s after the last
 * echo.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ETHERTYPE_FRAMES 0x88b5	/* IEEE 802 local experimental */
#define WINDOW 16
#define FRAME_LEN 64
#define PROGRESS_EVERY 500
#define IDLE_LIMIT_US (20 * 1000000ULL)

struct frame {
	struct ether_header eth;
	uint64_t boot_id;
	uint32_t seq;
} __attribute__((packed));

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

/* The number after @key on the kernel command line, or @def. */
static unsigned long cmdline_value(const char *key, unsigned long def)
{
	char buf[4096] = "";
	char *p;
	int fd = open("/proc/cmdline", O_RDONLY);

	if (fd >= 0) {
		ssize_t len = read(fd, buf, sizeof(buf) - 1);

		if (len > 0)
			buf[len] = 0;
		close(fd);
	}
	p = strstr(buf, key);
	return p ? strtoul(p + strlen(key), NULL, 10) : def;
}

/* When frame @seq is due at @rate frames a second from @t0; 0: now. */
static uint64_t due_us(uint64_t t0, unsigned long rate, unsigned long seq)
{
	return rate ? t0 + seq * 1000000ULL / rate : 0;
}

int main(void)
{
	unsigned long total, rate, sent = 0, echoed = 0, lost = 0, dup = 0, reordered = 0;
	uint64_t boot_id, last_echo, maxgap = 0, t0;
	struct sockaddr_ll addr = { .sll_family = AF_PACKET };
	struct ifreq ifr = { 0 };
	unsigned char mac[ETH_ALEN];
	struct frame out = { 0 };
	unsigned long next = 0;	/* the echo expected next */
	int s, i;

	/* The console is the only way out: make sure stdout reaches it */
	mkdir("/dev", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	i = open("/dev/console", O_RDWR);
	if (i >= 0) {
		dup2(i, 1);
		dup2(i, 2);
	}
	mkdir("/proc", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	total = cmdline_value("frames=", 20000);
	rate = cmdline_value("rate=", 0);
	if (getrandom(&boot_id, sizeof(boot_id), GRND_INSECURE) != sizeof(boot_id))
		boot_id = now_us();

	s = socket(AF_PACKET, SOCK_RAW, htons(ETHERTYPE_FRAMES));
	if (s < 0) {
		say("frames: socket: %s\n", strerror(errno));
		power_off();
	}
	strcpy(ifr.ifr_name, "eth0");
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
		say("frames: no eth0: %s\n", strerror(errno));
		power_off();
	}
	addr.sll_ifindex = ifr.ifr_ifindex;
	addr.sll_protocol = htons(ETHERTYPE_FRAMES);
	if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) {
		say("frames: SIOCGIFHWADDR: %s\n", strerror(errno));
		power_off();
	}
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		say("frames: SIOCGIFFLAGS: %s\n", strerror(errno));
		power_off();
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		say("frames: SIOCSIFFLAGS: %s\n", strerror(errno));
		power_off();
	}
	if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		say("frames: bind: %s\n", strerror(errno));
		power_off();
	}

	memcpy(out.eth.ether_dhost, mac, ETH_ALEN);
	memcpy(out.eth.ether_shost, mac, ETH_ALEN);
	out.eth.ether_type = htons(ETHERTYPE_FRAMES);
	out.boot_id = boot_id;
	say("frames: boot %016llx start total %lu mac %02x:%02x:%02x:%02x:%02x:%02x\n",
	    (unsigned long long)boot_id, total,
	    mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);

	last_echo = t0 = now_us();
	while (echoed + lost < total) {
		unsigned char in[2048];
		struct pollfd pfd = { .fd = s, .events = POLLIN };
		struct frame *f = (struct frame *)in;
		struct sockaddr_ll from;
		socklen_t from_len;
		ssize_t len;
		uint64_t t;
		int wait_ms = 1000;

		while (sent < total && sent - (echoed + lost) < WINDOW &&
		       now_us() >= due_us(t0, rate, sent)) {
			unsigned char buf[FRAME_LEN] = { 0 };

			out.seq = sent;
			memcpy(buf, &out, sizeof(out));
			if (send(s, buf, sizeof(buf), 0) != sizeof(buf)) {
				if (errno == ENOBUFS || errno == EAGAIN)
					break;
				say("frames: send: %s\n", strerror(errno));
				power_off();
			}
			sent++;
		}

		/* Not due yet: wake up for it, or for an echo before. */
		if (sent < total && rate) {
			t = now_us();
			if (due_us(t0, rate, sent) > t)
				wait_ms = (due_us(t0, rate, sent) - t) / 1000 + 1;
			if (wait_ms > 1000)
				wait_ms = 1000;
		}
		if (poll(&pfd, 1, wait_ms) <= 0) {
			if (now_us() - last_echo > IDLE_LIMIT_US) {
				say("frames: boot %016llx stalled: no echo for %llu s\n",
				    (unsigned long long)boot_id,
				    (unsigned long long)(IDLE_LIMIT_US / 1000000));
				break;
			}
			continue;
		}
		from_len = sizeof(from);
		len = recvfrom(s, in, sizeof(in), 0, (struct sockaddr *)&from, &from_len);
		/* Only what came back through the device, not our own sends */
		if (len < (ssize_t)sizeof(*f) || f->boot_id != boot_id ||
		    from.sll_pkttype == PACKET_OUTGOING)
			continue;
		t = now_us();
		if (t - last_echo > maxgap)
			maxgap = t - last_echo;
		last_echo = t;

		if (f->seq == next) {
			echoed++;
			next++;
		} else if (f->seq > next) {
			/* frames next .. seq-1 never came back (yet) */
			lost += f->seq - next;
			echoed++;
			next = f->seq + 1;
		} else if (f->seq < next) {
			/* seen already, or came back after a later one */
			if (lost) {
				lost--;
				reordered++;
				echoed++;
			} else {
				dup++;
			}
		}
		if (echoed % PROGRESS_EVERY == 0)
			say("frames: boot %016llx progress sent %lu echoed %lu lost %lu dup %lu reordered %lu maxgap_us %llu\n",
			    (unsigned long long)boot_id, sent, echoed, lost, dup,
			    reordered, (unsigned long long)maxgap);
	}
	say("frames: boot %016llx done sent %lu echoed %lu lost %lu dup %lu reordered %lu maxgap_us %llu\n",
	    (unsigned long long)boot_id, sent, echoed, lost, dup, reordered,
	    (unsigned long long)maxgap);
	power_off();
	return 0;
}
