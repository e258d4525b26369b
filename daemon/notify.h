/*
 * The systemd notification protocol (sd_notify(3)) written directly to
 * $NOTIFY_SOCKET: one datagram per message.  Without NOTIFY_SOCKET every
 * call is a no-op, so kilnd runs the same with or without systemd.
 */
#ifndef KILN_NOTIFY_H
#define KILN_NOTIFY_H

/* "READY=1", "STOPPING=1", "STATUS=..."; 0, or -errno. */
int notify_send(const char *msg);

#endif
