/*
 * sockopt.h: socket options shared by the porthole and portholectl clients.
 */
#ifndef PORTHOLE_SOCKOPT_H
#define PORTHOLE_SOCKOPT_H

/*
 * Makes a blocking read or write on fd fail with EAGAIN once timeout_ms
 * passes without any progress (SO_RCVTIMEO and SO_SNDTIMEO), so a silent
 * peer cannot hang a client forever. Returns 0 or a negative errno.
 */
int	sockopt_io_timeout(int fd, int timeout_ms);

#endif /* PORTHOLE_SOCKOPT_H */
