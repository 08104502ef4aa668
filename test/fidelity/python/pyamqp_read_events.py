"""Reads the hub's telemetry with azure-eventhub's EventHubConsumerClient, whose AMQP stack from 5.11 on is pyamqp
(pure Python): $cbs, $management READ of the hub and its partitions, then a receiver on each partition.

Usage: pyamqp_read_events.py EVENTHUB_CONNECTION_STRING CA_FILE EXPECTED_COUNT
Prints the hub's properties, then one JSON line per event, and exits 0 once EXPECTED_COUNT events arrived."""
import json
import sys
import threading

import port_redirect  # noqa: F401  (before the client opens a socket)
from azure.eventhub import EventHubConsumerClient
from azure.eventhub import _pyamqp  # noqa: F401  (fails where azure-eventhub still runs on uamqp)

connection_string, ca_file, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = EventHubConsumerClient.from_connection_string(
    connection_string, consumer_group="$Default", connection_verify=ca_file
)
properties = client.get_eventhub_properties()
print(json.dumps({"partition_ids": properties["partition_ids"]}), flush=True)
received = []
done = threading.Event()


def on_event(partition_context, event):
    annotations = event.system_properties
    received.append(1)
    print(json.dumps({
        "partition": partition_context.partition_id,
        "body": event.body_as_str(),
        "device": annotations.get(b"iothub-connection-device-id", b"").decode(),
        "sequence_number": event.sequence_number,
    }), flush=True)
    if len(received) >= expected:
        done.set()


threading.Thread(target=lambda: (done.wait(20), client.close()), daemon=True).start()
client.receive(on_event=on_event, starting_position="-1")
sys.exit(0 if len(received) >= expected else 1)
