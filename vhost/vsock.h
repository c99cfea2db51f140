/*
 * vsock.h: a virtio-vsock device (virtio 1.x, section 5.10) on top of the
 * vhost-user back-end in vhost.h: the guest's AF_VSOCK stream connections
 * to the host, carried as 44-byte packet headers plus payload on the rx
 * and tx queues, with credit-based flow control both ways.
 *
 * The host end of each guest connection is a service in the same process
 * (ops.connect hands one over): payload from the guest is passed to it as
 * iovecs over the guest's mapped memory (ops.write), and the service fills
 * the guest's receive buffers itself (ops.read), so a file can be read
 * straight into guest memory with no copy in between. Only connections to
 * the host CID (2) and the configured port are accepted; anything else
 * gets RST.
 *
 * The guest is untrusted. A packet that breaks the protocol (a length
 * that is not in the chain, a spoofed source CID, data beyond the credit
 * it was given) resets that connection or is dropped; a queue that breaks
 * the virtqueue rules breaks the whole device (ops.broken), which drops
 * every connection and stays silent until the driver resets it. Nothing
 * else is affected. A driver that sets its queues up afresh (a reset or a
 * reboot) finds no connections left; a VM that was paused finds them all,
 * and they go on.
 *
 * Calls into the service never nest: a vsock_conn_wake() or
 * vsock_conn_close() made from inside an ops callback is acted on once
 * the device's current work is done.
 */
#ifndef PORTHOLE_VHOST_VSOCK_H
#define PORTHOLE_VHOST_VSOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vhost.h"

#define VSOCK_HOST_CID		2
#define VSOCK_HDR_LEN		44
/* Payload bytes in one packet at most (as Linux sends and accepts). */
#define VSOCK_MAX_PKT		(64u * 1024)
/* Queues: receive (device to driver), transmit, event. */
#define VSOCK_QUEUE_RX		0
#define VSOCK_QUEUE_TX		1
#define VSOCK_QUEUE_EVENT	2
/* Guest connections one device carries at once; more get RST. */
#define VSOCK_MAX_CONNS		256

/* Packet operations (virtio 1.x, 5.10.6). */
enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_TYPE_STREAM	1
#define VSOCK_SHUTDOWN_RCV	1u	/* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND	2u	/* the sender will send no more */

/* The packet header, decoded (on the wire: little-endian, packed). */
struct vsock_hdr {
	uint64_t	src_cid;
	uint64_t	dst_cid;
	uint32_t	src_port;
	uint32_t	dst_port;
	uint32_t	len;
	uint16_t	type;
	uint16_t	op;
	uint32_t	flags;
	uint32_t	buf_alloc;
	uint32_t	fwd_cnt;
};

/* Decodes VSOCK_HDR_LEN bytes at buf into h. */
void	vsock_hdr_decode(const uint8_t *buf, struct vsock_hdr *h);

/* Encodes h into VSOCK_HDR_LEN bytes at buf. */
void	vsock_hdr_encode(const struct vsock_hdr *h, uint8_t *buf);

struct vsock_dev;
/* The device's side of one guest connection, for vsock_conn_wake/close. */
struct vsock_conn;

struct vsock_dev_config {
	uint64_t	guest_cid;	/* 3 .. 0xfffffffe */
	uint32_t	port;		/* the one host port served */
	uint32_t	buf_alloc;	/* receive buffer per connection, bytes
					   (4 KiB .. 16 MiB; 0: 64 KiB) */
};

/*
 * What the embedder provides. arg is vsock_dev_new()'s; end is what
 * connect returned for the connection.
 */
struct vsock_dev_ops {
	/*
	 * The guest connects to the host port from guest_port. Returns 0 and
	 * the service's end of the connection in *end, or a negative errno to
	 * refuse: the guest gets RST. vc is the device's side, for
	 * vsock_conn_wake() and vsock_conn_close() once connect has returned
	 * 0, until ops.gone or vsock_conn_close().
	 */
	int	(*connect)(void *arg, uint32_t guest_port, struct vsock_conn *vc,
		    void **end);
	/*
	 * Payload from the guest: len bytes in niov pieces of guest memory
	 * (read them now; they are not the service's to keep). Returns the
	 * bytes taken, 0 .. len, from the front; the device keeps the rest
	 * and offers it again after vsock_conn_wake(). A negative errno
	 * resets the connection.
	 */
	ssize_t	(*write)(void *end, const struct iovec *iov, size_t niov,
		    size_t len);
	/*
	 * Room for output: the first len bytes of niov pieces of the guest's
	 * receive buffer. Returns the bytes written there (1 .. len; the
	 * device asks again while there is credit), -EAGAIN when there is
	 * nothing to send now (call vsock_conn_wake() when there is), 0 when
	 * there will never be more, or another negative errno to reset the
	 * connection.
	 */
	ssize_t	(*read)(void *end, const struct iovec *iov, size_t niov,
		    size_t len);
	/* The guest will send nothing more; every byte it sent was taken. */
	void	(*eof)(void *end);
	/*
	 * The device forgot the connection: the guest reset or closed it, or
	 * its driver reset the device, or the device was freed. end gets no
	 * more calls and must not use vc again.
	 */
	void	(*gone)(void *end);
	/*
	 * The guest broke the virtqueue rules; why is a static string. The
	 * device dropped its connections and waits for a reset. May be NULL.
	 */
	void	(*broken)(void *arg, const char *why);
};

/* Counters, for logs and status. */
struct vsock_dev_stats {
	uint64_t	to_guest;	/* payload bytes delivered to the guest */
	uint64_t	from_guest;	/* payload bytes the services took */
	uint64_t	accepted;	/* connections accepted */
	uint64_t	refused;	/* RST sent for a REQUEST */
	uint64_t	resets;		/* connections reset for a bad packet */
	uint64_t	dropped;	/* packets dropped (bad header or CID) */
	uint32_t	connections;	/* open now */
	bool		running;	/* both data queues started */
	bool		broken;
};

/*
 * Creates a device for the guest cfg describes. ops and arg are borrowed
 * and must outlive it. Returns 0 and sets *out, -EINVAL for a CID or
 * buffer size out of range, or -ENOMEM.
 */
int	vsock_dev_new(const struct vsock_dev_config *cfg,
	    const struct vsock_dev_ops *ops, void *arg, struct vsock_dev **out);

/*
 * Frees the device; every connection's end gets ops.gone. Free the
 * vhost_user serving it first. Accepts NULL.
 */
void	vsock_dev_free(struct vsock_dev *d);

/*
 * The callbacks that connect the device to a vhost_user: pass them to
 * vhost_user_new() with the device as dev_arg.
 */
const struct vhost_user_device *vsock_dev_vhost(void);

/*
 * The service has output again, or room for input the device holds back:
 * the device goes on with the connection (now, or after the callback in
 * progress returns).
 */
void	vsock_conn_wake(struct vsock_conn *vc);

/*
 * The service ends the connection: output it has not handed over is not
 * asked for, payload still coming is dropped, and the guest gets SHUTDOWN.
 * The end gets no more calls; vc must not be used again.
 */
void	vsock_conn_close(struct vsock_conn *vc);

/* Fills st. */
void	vsock_dev_stats(const struct vsock_dev *d, struct vsock_dev_stats *st);

#endif /* PORTHOLE_VHOST_VSOCK_H */
