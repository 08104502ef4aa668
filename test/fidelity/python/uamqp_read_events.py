"""Reads one partition of the hub's telemetry with uamqp, as the Azure CLI's `az iot hub monitor-events` does (its
azext_iot event monitor): a CBS login with a SAS token for the Event Hubs entity, then a receiver on
`{entity}/ConsumerGroups/$Default/Partitions/{n}` with an offset filter.

Usage: uamqp_read_events.py HOST PORT ENTITY SAS_TOKEN CA_FILE PARTITION EXPECTED_COUNT
Prints one JSON line per event and exits 0 once EXPECTED_COUNT events arrived."""
import json
import sys
import time
from collections import namedtuple

import uamqp
from uamqp import authentication

host, port, entity, sas_token, ca_file, partition, expected = sys.argv[1:8]
expected = int(expected)
Token = namedtuple("Token", "token expires_on")
audience = "sb://{}/{}".format(host, entity)
auth = authentication.JWTTokenAuth(
    audience=audience,
    uri=audience,
    get_token=lambda: Token(sas_token.encode(), int(time.time()) + 3600),
    token_type=b"servicebus.windows.net:sastoken",
    port=int(port),
    verify=ca_file,
)
auth.update_token()
source = uamqp.address.Source(
    "amqps://{}/{}/ConsumerGroups/$Default/Partitions/{}".format(host, entity, partition)
)
source.set_filter(b"amqp.annotation.x-opt-offset > '-1'")
client = uamqp.ReceiveClient(source, auth=auth, timeout=15000, prefetch=50)
received = 0
for message in client.receive_messages_iter():
    annotations = message.annotations or {}
    print(json.dumps({
        "body": b"".join(message.get_data()).decode(),
        "device": annotations.get(b"iothub-connection-device-id", b"").decode(),
        "sequence_number": annotations.get(b"x-opt-sequence-number"),
    }), flush=True)
    received += 1
    if received >= expected:
        break
client.close()
sys.exit(0 if received >= expected else 1)
