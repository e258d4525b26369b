#!/usr/bin/env python3
# A TCP relay to PostgreSQL that loses one answer: started as
#   dropreply.py PORTFILE SERVER_PORT ARMFILE
# it listens on a port of the kernel's choosing, written to PORTFILE once
# it accepts (so that no other program's port can be taken for it), and
# relays every connection.  When ARMFILE exists and a client's message
# contains the word ARMFILE holds, the server's next answer on that
# connection is thrown away and both sides are closed: the server did
# the work (committed), the client never hears it.  ARMFILE is removed
# then, so one answer is lost.
import os
import select
import socket
import sys
import threading

portfile, sport, arm = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(64)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % ls.getsockname()[1])
os.rename(portfile + ".tmp", portfile)


def relay(c):
    s = socket.create_connection(("127.0.0.1", sport))
    doomed = False
    try:
        while True:
            r, _, _ = select.select([c, s], [], [])
            if c in r:
                d = c.recv(65536)
                if not d:
                    break
                if os.path.exists(arm):
                    with open(arm) as f:
                        w = f.read().strip().encode()
                    if w and w in d:
                        doomed = True
                        os.unlink(arm)
                s.sendall(d)
            if s in r:
                d = s.recv(65536)
                if not d:
                    break
                if doomed:
                    print("dropreply: an answer lost", flush=True)
                    break
                c.sendall(d)
    except OSError:
        pass
    c.close()
    s.close()


while True:
    conn, _ = ls.accept()
    threading.Thread(target=relay, args=(conn,), daemon=True).start()
