/*
 * vhost.h: a vhost-user back-end: guest memory, split virtqueues and the
 * vhost-user control protocol, written from the virtio 1.x specification
 * (section 2.7, split virtqueues) and QEMU's vhost-user specification.
 *
 * Three layers, each usable on its own:
 *
 *   struct vhost_mem   the guest memory table: translates guest physical
 *                      addresses (descriptor buffers) and front-end virtual
 *                      addresses (ring locations) to our own pointers,
 *                      refusing every byte that is not mapped.
 *   struct vhost_vq    one split virtqueue over a memory table: pops
 *                      descriptor chains, pushes used entries, decides when
 *                      the driver wants an interrupt.
 *   struct vhost_user  one front-end connection (QEMU): reads its messages
 *                      from a unix socket, maps the memory it sends, sets
 *                      up the rings and hands them to a device.
 *
 * Everything in guest memory is hostile: the guest may write any value at
 * any time, also while we read it. Each value is read once into our own
 * memory and checked there. A queue the guest corrupts is marked broken:
 * it refuses further work until the front-end sets it up again, and the
 * device decides what else to drop. Nothing here aborts on guest input.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * errno on failure. Nothing logs or keeps global state. Descriptors the
 * library must have polled are handed to the embedder through struct
 * vhost_watch, so any event loop can drive it.
 */
#ifndef PORTHOLE_VHOST_H
#define PORTHOLE_VHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Virtio feature bits the library knows (virtio 1.x, section 6). */
#define VHOST_F_INDIRECT_DESC	28	/* VIRTIO_RING_F_INDIRECT_DESC */
#define VHOST_F_EVENT_IDX	29	/* VIRTIO_RING_F_EVENT_IDX */
#define VHOST_F_PROTOCOL_FEATURES 30	/* vhost-user: protocol features */
#define VHOST_F_VERSION_1	32	/* VIRTIO_F_VERSION_1 */

/* The largest queue a split virtqueue may have (virtio 1.x, 2.7). */
#define VHOST_QUEUE_MAX		32768
/* Memory regions in one table; QEMU sends at most this many. */
#define VHOST_MEM_MAX_REGIONS	8
/*
 * Pieces one descriptor chain may be made of after translation. A longer
 * chain is valid per the specification but no driver we serve builds one:
 * it breaks the queue rather than being served in part.
 */
#define VHOST_CHAIN_MAX_IOV	64

/* ---- Watching descriptors ------------------------------------------------ */

#define VHOST_EV_READ		0x1u
#define VHOST_EV_WRITE		0x2u

/*
 * How the library asks its embedder (an event loop) to poll a descriptor.
 * *slot belongs to the embedder: it is NULL the first time a descriptor is
 * watched, the embedder may store its own handle there, and the library
 * passes the same slot for that descriptor until release.
 */
struct vhost_watch {
	/*
	 * Starts, changes or (events 0) pauses watching fd. When fd becomes
	 * ready for some of events, the embedder calls ready(obj, ready
	 * events) from its loop. Returns 0 or a negative errno.
	 */
	int	(*watch)(void *arg, void **slot, int fd, unsigned events,
		    void (*ready)(void *obj, unsigned events), void *obj);
	/*
	 * Stops watching fd for good and closes it (the library closes
	 * nothing it ever watched). *slot is NULL afterwards. May be called
	 * from inside fd's own ready callback.
	 */
	void	(*release)(void *arg, void **slot, int fd);
	void	*arg;
};

/* ---- Guest memory -------------------------------------------------------- */

struct vhost_mem;

/* Creates an empty memory table. Returns 0 and sets *out, or -ENOMEM. */
int	vhost_mem_new(struct vhost_mem **out);

/* Frees the table and unmaps the regions it mapped. Accepts NULL. */
void	vhost_mem_free(struct vhost_mem *m);

/*
 * Adds a region of size bytes at guest physical address gpa and front-end
 * virtual address uva, present here at host (caller-owned memory that must
 * outlive the table). Returns 0, -EINVAL for a zero size, an address range
 * that wraps around 2^64, or one that overlaps a region already in the
 * table (in either address space), -E2BIG past VHOST_MEM_MAX_REGIONS.
 */
int	vhost_mem_add(struct vhost_mem *m, uint64_t gpa, uint64_t size,
	    uint64_t uva, void *host);

/* Regions in the table. */
size_t	vhost_mem_count(const struct vhost_mem *m);

/*
 * Translates len bytes at guest physical address gpa into host iovecs,
 * appended to iov[*niov..max). A range may span adjacent regions; every
 * byte must be in one. Zero bytes append nothing. Returns 0, -EFAULT if a
 * byte is outside the table (or gpa + len wraps), -E2BIG if more than max
 * iovecs would be needed; *niov is unchanged on failure.
 */
int	vhost_mem_gpa(const struct vhost_mem *m, uint64_t gpa, uint64_t len,
	    struct iovec *iov, size_t *niov, size_t max);

/*
 * The host address of len bytes at guest physical address gpa, which must
 * lie within one region; NULL otherwise.
 */
void	*vhost_mem_gpa_ptr(const struct vhost_mem *m, uint64_t gpa,
	    uint64_t len);

/*
 * The host address of len (> 0) bytes at front-end virtual address uva,
 * which must lie within one region; NULL otherwise.
 */
void	*vhost_mem_uva_ptr(const struct vhost_mem *m, uint64_t uva,
	    uint64_t len);

/* ---- Split virtqueues --------------------------------------------------- */

struct vhost_vq;

/* Where a queue's three parts are and how it behaves. */
struct vhost_vq_config {
	uint32_t	num;		/* queue size: a power of 2 */
	uint64_t	desc;		/* descriptor table, front-end address */
	uint64_t	avail;		/* available ring */
	uint64_t	used;		/* used ring */
	uint16_t	last_avail;	/* next available entry to take */
	uint64_t	features;	/* negotiated: EVENT_IDX, INDIRECT_DESC */
	int		call_fd;	/* eventfd to interrupt the driver, or -1 */
	int		kick_fd;	/* the driver's notifications, or -1 */
	int		err_fd;		/* eventfd to report a broken queue, or -1 */
	bool		resumed;	/* the ring goes on where a stopped
					   one left off (a paused VM) */
};

/*
 * One descriptor chain as the device sees it. iov[0..nout) are the
 * driver's buffers for the device to read, iov[nout..nout + nin) those it
 * writes; out_len and in_len are their sizes in bytes.
 */
struct vhost_chain {
	uint16_t	head;
	size_t		nout;
	size_t		nin;
	uint64_t	out_len;
	uint64_t	in_len;
	struct iovec	iov[VHOST_CHAIN_MAX_IOV];
};

/*
 * Creates a queue over mem (borrowed; must outlive the queue, or be
 * replaced with vhost_vq_remap() first) from cfg. The descriptors in cfg
 * are borrowed too: the queue writes to call_fd, kick_fd and err_fd but
 * never closes them. Returns 0 and sets *out; -EINVAL for a size that is
 * not a power of 2 in 1..VHOST_QUEUE_MAX or a misaligned ring; -EFAULT if
 * a ring is not inside one region of mem; -ENOMEM.
 */
int	vhost_vq_new(const struct vhost_mem *mem,
	    const struct vhost_vq_config *cfg, struct vhost_vq **out);

/* Frees the queue (not its descriptors or memory). Accepts NULL. */
void	vhost_vq_free(struct vhost_vq *vq);

/*
 * Points the queue at a new memory table (the front-end replaced it) and
 * translates the rings again. Returns 0, or -EFAULT (the queue is then
 * broken) when a ring is no longer mapped.
 */
int	vhost_vq_remap(struct vhost_vq *vq, const struct vhost_mem *mem);

/*
 * Takes the next available descriptor chain into *c. Returns 1 with *c
 * filled, 0 when none is available (with EVENT_IDX, having asked the
 * driver to notify us at the next one), or -EIO when the queue is broken:
 * now, because the chain was malformed (see vhost_vq_error()), or before.
 * The iovecs point into guest memory, valid until the memory table goes.
 */
int	vhost_vq_pop(struct vhost_vq *vq, struct vhost_chain *c);

/* Puts the chain popped last back, to be taken again by the next pop. */
void	vhost_vq_unpop(struct vhost_vq *vq);

/*
 * Returns the chain starting at head to the driver with len bytes written
 * into its device-writable buffers. Returns 0, or -EIO on a broken queue.
 */
int	vhost_vq_push(struct vhost_vq *vq, uint16_t head, uint32_t len);

/*
 * Interrupts the driver if it wants to hear about the entries pushed since
 * the last call (VRING_AVAIL_F_NO_INTERRUPT, or the used_event index with
 * EVENT_IDX). Returns 1 if it was interrupted, 0 if not, or a negative
 * errno from writing call_fd.
 */
int	vhost_vq_notify(struct vhost_vq *vq);

/*
 * Makes the queue's kick descriptor readable, so that its watcher runs
 * again from the event loop: a device that stopped early to let others
 * run uses it to come back. Returns 0 or a negative errno.
 */
int	vhost_vq_rekick(struct vhost_vq *vq);

/* Marks the queue broken with why (a static string) and reports it on
 * err_fd. The device calls it for a chain that breaks its own rules. */
void	vhost_vq_break(struct vhost_vq *vq, const char *why);

/* True once the queue is broken. */
bool	vhost_vq_broken(const struct vhost_vq *vq);

/* Why the queue broke (a static string), or NULL. */
const char *vhost_vq_error(const struct vhost_vq *vq);

/* The queue's size. */
uint32_t vhost_vq_num(const struct vhost_vq *vq);

/* The next available index to take (what GET_VRING_BASE reports). */
uint16_t vhost_vq_last_avail(const struct vhost_vq *vq);

/*
 * True when the ring goes on where an earlier one of the same queue
 * stopped (the VM was paused, or the front-end swapped its memory table),
 * false for a ring the driver set up afresh (a new device, or a reset).
 */
bool	vhost_vq_resumed(const struct vhost_vq *vq);

/* ---- vhost-user back-end -------------------------------------------------- */

/* vhost-user protocol feature bits we may offer. */
#define VHOST_USER_PROTOCOL_F_MQ	0
#define VHOST_USER_PROTOCOL_F_REPLY_ACK	3
#define VHOST_USER_PROTOCOL_F_CONFIG	9

struct vhost_user;

/*
 * The device behind a vhost-user connection. The library owns the queues;
 * the device sees a queue between start and stop.
 */
struct vhost_user_device {
	uint64_t	 features;	/* device feature bits offered; the
					   library adds VERSION_1, EVENT_IDX,
					   INDIRECT_DESC and PROTOCOL_FEATURES */
	uint32_t	 nqueues;	/* queues the back-end serves, 1..8 */
	uint32_t	 config_len;	/* device configuration space bytes */
	/* Copies len bytes of the configuration space from offset into buf
	 * (offset + len <= config_len). */
	void	(*get_config)(void *arg, uint32_t offset, void *buf,
		    uint32_t len);
	/* Queue q is started and enabled: vq is valid until stop(q). The
	 * negotiated features are in vhost_user_features(). */
	void	(*start)(void *arg, uint32_t q, struct vhost_vq *vq);
	/* The driver notified queue q (between start and stop). */
	void	(*kick)(void *arg, uint32_t q);
	/* Queue q stops: the front-end stopped or reset it, replaced the
	 * memory table or went away. vq is freed after this returns. */
	void	(*stop)(void *arg, uint32_t q);
};

/*
 * Serves the vhost-user front-end on the connected unix stream socket
 * sock (borrowed, non-blocking; the embedder polls it for reading and
 * calls vhost_user_input()). dev and its arg are borrowed; w watches the
 * queues' kick descriptors. Returns 0 and sets *out, -EINVAL for a device
 * with no or too many queues, or -ENOMEM.
 */
int	vhost_user_new(int sock, const struct vhost_user_device *dev,
	    void *dev_arg, const struct vhost_watch *w, struct vhost_user **out);

/*
 * Stops every queue (calling the device's stop), unmaps guest memory and
 * closes the descriptors the front-end sent. The socket stays open: it is
 * the embedder's. Accepts NULL.
 */
void	vhost_user_free(struct vhost_user *u);

/*
 * Reads and handles the messages waiting on the socket (a bounded number
 * per call; the socket stays readable if more are left) and sends their
 * replies. Returns 0 to continue; -ECONNRESET when the front-end closed the
 * connection; -EPROTO for a malformed or unsupported message (details in
 * vhost_user_error()), -EMSGSIZE for an oversized one; or another negative
 * errno from the socket. After an error the embedder frees the connection.
 */
int	vhost_user_input(struct vhost_user *u);

/* A one-line reason for the last error, or "" (static or internal). */
const char *vhost_user_error(const struct vhost_user *u);

/* The virtio features the front-end set (SET_FEATURES), or 0. */
uint64_t vhost_user_features(const struct vhost_user *u);

/* True once the front-end sent SET_OWNER. */
bool	vhost_user_owned(const struct vhost_user *u);

#endif /* PORTHOLE_VHOST_H */
