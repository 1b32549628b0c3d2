"""The raw signing rate: how many RSA-2048 PKCS#1 v1.5 / SHA-256 signatures of a typical
signing string one thread makes per second, the ceiling a delivery could reach if signing
were all it did."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from bridge.activitypub import keys
from bridge.federation.outbound import signing_key

SIGNING_STRING = (
    b'"@method": POST\n"@target-uri": https://mastodon.example/users/someone/inbox\n'
    b'"content-digest": sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\n'
    b'"content-type": application/activity+json\n"@signature-params": ("@method" '
    b'"@target-uri" "content-digest" "content-type");created=1700000000;'
    b'keyid="https://bridge.example/users/talkabout#main-key";alg="rsa-v1_5-sha256"'
)


def signing_rate(seconds: float = 2.0) -> float:
    """RSA-2048 signatures per second on this thread."""
    key = keys.generate_keypair("bench", datetime.now(UTC))
    private = signing_key(key.private_pem)
    pad, digest = padding.PKCS1v15(), hashes.SHA256()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            private.sign(SIGNING_STRING, pad, digest)
        count += 100
    return count / elapsed
