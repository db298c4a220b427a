"""The floor: the least an inbox can do and still be honest — parse the JSON, verify one
RSA signature over the signed headers with a key already in memory, insert one row.

No digest, no date window, no key look-up, no owner check, no dedup: whatever fedsx does
beyond this is the price of correctness, which the benchmark puts a number on.
"""

import base64
import re

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.db import connection
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from fedsx.models import Actor

_key = None
SIGNATURE = re.compile(r'(\w+)="([^"]*)"')


def _public_key():
    global _key
    if _key is None:
        pem = Actor.objects.get(ap_id="https://remote.example/users/bench").public_key_pem
        _key = load_pem_public_key(pem.encode())
    return _key


@csrf_exempt
def floor_inbox(request):
    body = request.body
    activity = orjson.loads(body)
    params = dict(SIGNATURE.findall(request.headers["Signature"]))
    lines = []
    for name in params["headers"].split():
        if name == "(request-target)":
            lines.append(f"(request-target): post {request.get_full_path()}")
        else:
            lines.append(f"{name}: {request.headers[name]}")
    _public_key().verify(
        base64.b64decode(params["signature"]),
        "\n".join(lines).encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_floor (body) VALUES (%s)", [orjson.dumps(activity).decode()]
        )
    return HttpResponse(status=202)
