"""stdin/stdout <-> TCP relay for ssh's ProxyCommand, run inside the container's netns via nsenter.

The container has only `lo` (--private-network), so the controller reaches its sshd through this
relay instead of an IP: no veth, no NAT, and several containers can run side by side.
usage: nsenter -t LEADER -n python3 tcp_relay.py 127.0.0.1 22
"""

import os
import socket
import sys
import threading


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _upstream(sock: socket.socket) -> None:
    while True:
        data = os.read(0, 65536)
        if not data:
            sock.shutdown(socket.SHUT_WR)
            return
        sock.sendall(data)


def main() -> None:
    sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    threading.Thread(target=_upstream, args=(sock,), daemon=True).start()
    while True:
        data = sock.recv(65536)
        if not data:
            break
        _write_all(1, data)


if __name__ == "__main__":
    main()
