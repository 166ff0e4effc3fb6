"""The demo's GP practice: reads its MESH mailbox (X26ABC2) on the MESH sandbox,
prints what GP Connect Send Document messages arrived, acknowledges them to MESH,
and answers each with an ITK3 business acknowledgement (30001, Patient known here)
sent back to the sender's mailbox, as a practice system would.

    python practice.py MESH_URL [SHARED_KEY]
"""
import base64
import datetime
import hashlib
import hmac
import json
import sys
import urllib.request
import uuid
import xml.etree.ElementTree as ET

F = "{http://hl7.org/fhir}"

URL = sys.argv[1].rstrip("/")
KEY = sys.argv[2] if len(sys.argv) > 2 else "TestKey"
ME, PASSWORD = "X26ABC2", "password"


def auth():
    nonce, ts = str(uuid.uuid4()), datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M")
    mac = hmac.new(KEY.encode(), f"{ME}:{nonce}:0:{PASSWORD}:{ts}".encode(), hashlib.sha256).hexdigest()
    return f"NHSMESH {ME}:{nonce}:0:{ts}:{mac}"


def call(method, path, body=None, headers=None):
    h = {"Authorization": auth(), "Accept": "application/vnd.mesh.v2+json", **(headers or {})}
    req = urllib.request.Request(f"{URL}/messageexchange/{ME}{path}", data=body, method=method, headers=h)
    with urllib.request.urlopen(req) as r:
        return dict(r.headers), r.read()


def business_ack(message_id):
    return json.dumps({
        "resourceType": "Bundle", "type": "message",
        "entry": [
            {"resource": {"resourceType": "MessageHeader",
                          "event": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2",
                                    "code": "ITK008M", "display": "ITK Response"},
                          "source": {"endpoint": ME},
                          "response": {"identifier": message_id, "code": "ok"}}},
            {"resource": {"resourceType": "OperationOutcome", "issue": [{
                "severity": "information", "code": "informational",
                "details": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/ITK-ResponseCodes-1",
                                        "code": "30001", "display": "Patient known here. (e.g. Patient is registered here)"}]}}]}},
        ],
    }).encode()


_, body = call("GET", "/inbox")
ids = json.loads(body)["messages"]
print(f"  {len(ids)} message(s) in {ME}")
for mid in ids:
    headers, body = call("GET", f"/inbox/{mid}")
    headers = {k.lower(): v for k, v in headers.items()}
    # FHIR STU3 XML (ITK3), or JSON when the bridge is set to mesh.format = "json".
    if body.lstrip().startswith(b"<"):
        root = ET.fromstring(body)
        value = lambda node, path: node.find("/".join(F + p for p in path)).get("value")
        header = root.find(f".//{F}MessageHeader")
        event = (value(header, ["event", "code"]), value(header, ["event", "display"]))
        header_id = value(header, ["id"])
        title = value(root.find(f".//{F}Composition"), ["title"])
        binary = root.find(f".//{F}Binary")
        content, content_type = value(binary, ["content"]), value(binary, ["contentType"])
    else:
        bundle = json.loads(body)
        res = [e["resource"] for e in bundle["entry"]]
        h = next(r for r in res if r["resourceType"] == "MessageHeader")
        event, header_id = (h["event"]["code"], h["event"]["display"]), h["id"]
        inner = [e["resource"] for e in next(r for r in res if r.get("type") == "document")["entry"]]
        b = next(r for r in inner if r["resourceType"] == "Binary")
        content, content_type = b["content"], b["contentType"]
        title = next(r for r in inner if r["resourceType"] == "Composition")["title"]
    print(f"  from {headers.get('mex-from')} workflow {headers.get('mex-workflowid')} local id {headers.get('mex-localid')}")
    print(f"    {event[0]} {event[1]}: \"{title}\", {len(base64.b64decode(content))} bytes of {content_type}")
    call("PUT", f"/inbox/{mid}/status/acknowledged")
    call("POST", "/outbox", business_ack(header_id),
         {"mex-To": headers["mex-from"], "mex-WorkflowID": "GPCONNECT_SEND_DOCUMENT_ACK",
          "Content-Type": "application/fhir+json"})
    print("    acknowledged to MESH; business acknowledgement 30001 sent back")
