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
    bundle = json.loads(body)
    res = [e["resource"] for e in bundle["entry"]]
    header = next(r for r in res if r["resourceType"] == "MessageHeader")
    doc = next(r for r in res if r.get("type") == "document")
    inner = [e["resource"] for e in doc["entry"]]
    binary = next(r for r in inner if r["resourceType"] == "Binary")
    title = next(r for r in inner if r["resourceType"] == "Composition")["title"]
    print(f"  from {headers.get('mex-from')} workflow {headers.get('mex-workflowid')} local id {headers.get('mex-localid')}")
    print(f"    {header['event']['code']} {header['event']['display']}: \"{title}\", "
          f"{len(base64.b64decode(binary['content']))} bytes of {binary['contentType']}")
    call("PUT", f"/inbox/{mid}/status/acknowledged")
    call("POST", "/outbox", business_ack(header["id"]),
         {"mex-To": headers["mex-from"], "mex-WorkflowID": "GPCONNECT_SEND_DOCUMENT_ACK",
          "Content-Type": "application/fhir+json"})
    print("    acknowledged to MESH; business acknowledgement 30001 sent back")
