#!/usr/bin/env python3
# A TCP relay to PostgreSQL that loses one answer: started as
#   dropreply.py LISTEN_PORT SERVER_PORT ARMFILE
# it relays every connection.  When ARMFILE exists and a client's message
# contains the word ARMFILE holds, the server's next answer on that
# connection is thrown away and both sides are closed: the server did
# the work (committed), the client never hears it.  ARMFILE is removed
# then, so one answer is lost.
import os
import select
import socket
import sys
import threading

lport, sport, arm = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lport))
ls.listen(64)


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
