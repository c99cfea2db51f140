/*
 * sockopt.c: socket options shared by the porthole and portholectl clients.
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "sockopt.h"

int
sockopt_io_timeout(int fd, int timeout_ms)
{
	struct timeval tv;

	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		return -errno;
	return 0;
}
