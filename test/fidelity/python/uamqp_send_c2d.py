"""Sends one cloud-to-device message the way azure-iot-hub for Python does (iothub_amqp_client.py): uamqp, a CBS
login with a service SAS token (SASL MSSBCBS, then put-token on $cbs), a sender on /messages/devicebound.

Usage: uamqp_send_c2d.py HOST PORT SAS_TOKEN CA_FILE DEVICE_ID BODY
Prints "sent <state>" and exits 0 when the hub accepted the message."""
import sys
import time
import uuid
from collections import namedtuple

import uamqp
from uamqp import authentication

host, port, sas_token, ca_file, device_id, body = sys.argv[1:7]
Token = namedtuple("Token", "token expires_on")
auth = authentication.JWTTokenAuth(
    audience="https://" + host,
    uri="https://" + host,
    get_token=lambda: Token(sas_token.encode(), int(time.time()) + 3600),
    token_type=b"servicebus.windows.net:sastoken",
    port=int(port),
    verify=ca_file,
)
auth.update_token()
client = uamqp.SendClient("amqps://" + host + "/messages/devicebound", auth=auth)
properties = uamqp.message.MessageProperties()
properties.message_id = str(uuid.uuid4())
properties.to = "/devices/{}/messages/devicebound".format(device_id)
client.queue_message(
    uamqp.Message(bytearray(body, "utf8"), properties=properties, application_properties={"sent-by": "uamqp"})
)
results = client.send_all_messages(close_on_done=True)
print("sent", results[0].name, flush=True)
sys.exit(0 if results == [uamqp.constants.MessageState.SendComplete] else 1)
