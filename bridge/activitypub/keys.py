"""RSA key pairs of our actors: generated once per actor, kept in the store."""

from __future__ import annotations

import asyncio
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.store.base import KeyPair, KeyStore

INSTANCE_OWNER = "instance"


def generate_keypair(owner: str, now: datetime) -> KeyPair:
    """A fresh RSA-2048 key pair (CPU-bound: call it off the event loop)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return KeyPair(owner=owner, private_pem=private_pem, public_pem=public_pem, created_at=now)


async def ensure_keypair(store: KeyStore, owner: str, now: datetime) -> KeyPair:
    """The owner's key pair, generating and storing one the first time."""
    existing = await store.get_keypair(owner)
    if existing is not None:
        return existing
    fresh = await asyncio.to_thread(generate_keypair, owner, now)
    return await store.put_keypair_if_absent(fresh)
