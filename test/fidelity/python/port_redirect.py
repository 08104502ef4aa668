"""Sends this process's connections to localhost:5671 (or 443, 8883) to the ports a test hub took, as
test/localhub/port-redirect.cjs does for Node: LOCALHUB_PORT_MAP="5671=40123,...". Python clients keep their
fixed ports; uamqp's C sockets are not Python's, so its scripts pass the port themselves."""
import os
import socket

_PORTS = {
    int(standard): int(actual)
    for standard, actual in (pair.split("=") for pair in os.environ.get("LOCALHUB_PORT_MAP", "").split(",") if pair)
}
_connect = socket.socket.connect


def _connect_redirected(self, address):
    if isinstance(address, tuple) and len(address) >= 2 and address[1] in _PORTS:
        address = (address[0], _PORTS[address[1]]) + tuple(address[2:])
    return _connect(self, address)


socket.socket.connect = _connect_redirected
