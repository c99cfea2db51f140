/*
 * err.c: the protocol's error codes, their names and texts, and the
 * mapping from errno values.
 */
#include <errno.h>

#include "proto.h"

/* Names and texts, indexed by code; PROTOCOL.md lists the same table. */
static const struct {
	const char	*name;
	const char	*text;
} err_table[PH_ERR_MAX + 1] = {
	[PH_OK] = { "OK", "success" },
	[PH_ERR_PROTOCOL] = { "PROTOCOL",
	    "malformed frame or unexpected message" },
	[PH_ERR_VERSION] = { "VERSION", "no common protocol version" },
	[PH_ERR_BAD_PATH] = { "BAD_PATH",
	    "invalid path (bad UTF-8, control bytes or too long)" },
	[PH_ERR_PATH_ESCAPE] = { "PATH_ESCAPE",
	    "path leads outside the repository" },
	[PH_ERR_NOT_FOUND] = { "NOT_FOUND", "no such file or directory" },
	[PH_ERR_FORBIDDEN] = { "FORBIDDEN", "permission denied" },
	[PH_ERR_NOT_FILE] = { "NOT_FILE", "not a regular file" },
	[PH_ERR_NOT_DIR] = { "NOT_DIR", "not a directory" },
	[PH_ERR_BUSY] = { "BUSY", "server busy, queue full" },
	[PH_ERR_IO] = { "IO", "the host could not read the file" },
	[PH_ERR_CHANGED] = { "CHANGED",
	    "the file changed while it was being sent" },
	[PH_ERR_BAD_OFFSET] = { "BAD_OFFSET",
	    "resume offset is past the end of the file" },
	[PH_ERR_UNAVAILABLE] = { "UNAVAILABLE",
	    "no repository configured, or upstream unavailable" },
	[PH_ERR_INTEGRITY] = { "INTEGRITY", "digest mismatch" },
	[PH_ERR_TIMEOUT] = { "TIMEOUT", "timed out" },
	[PH_ERR_SHUTDOWN] = { "SHUTDOWN", "the server is shutting down" },
	[PH_ERR_USAGE] = { "USAGE", "bad command or arguments" },
	[PH_ERR_INTERNAL] = { "INTERNAL", "internal server error" },
};

const char *
ph_err_name(unsigned int code)
{
	if (code > PH_ERR_MAX)
		return "UNKNOWN";
	return err_table[code].name;
}

const char *
ph_err_text(unsigned int code)
{
	if (code > PH_ERR_MAX)
		return "unknown error";
	return err_table[code].text;
}

enum ph_err
ph_err_from_errno(int neg_errno)
{
	switch (neg_errno) {
	case 0:
		return PH_OK;
	case -ENOENT:
		return PH_ERR_NOT_FOUND;
	case -EACCES:
	case -EPERM:
		return PH_ERR_FORBIDDEN;
	case -EXDEV:
	case -ELOOP:
		return PH_ERR_PATH_ESCAPE;
	case -ENOTDIR:
		return PH_ERR_NOT_DIR;
	default:
		return PH_ERR_IO;
	}
}
