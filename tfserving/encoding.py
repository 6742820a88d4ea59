"""Compressed request bodies: ``Content-Encoding: gzip`` and ``deflate``.

TF Serving decompresses gzip request bodies by default, and tritonclient's
``request_compression_algorithm`` sends gzip or deflate. A body is inflated
incrementally and never beyond the decompressed-size limit, so a small
"zip bomb" costs at most ``limit`` bytes of memory before it is refused (413).

"deflate" is the zlib format (RFC 9110, and what tritonclient sends through
``zlib.compress``); a raw DEFLATE stream, which some clients send under the
same name, is accepted too.
"""

from __future__ import annotations

import zlib

from kva.tfserving.errors import InvalidArgument, PayloadTooLarge

#: ``wbits`` per coding: gzip header, zlib header, raw DEFLATE.
_GZIP, _ZLIB, _RAW = 16 + zlib.MAX_WBITS, zlib.MAX_WBITS, -zlib.MAX_WBITS
#: How much compressed input is fed to the inflater per step.
_CHUNK = 64 * 1024


def decode_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """``body`` with its ``Content-Encoding`` undone; at most ``limit`` bytes out.

    Raises:
        InvalidArgument: an unsupported coding, or data not in the named format (400).
        PayloadTooLarge: the decompressed body exceeds ``limit`` (413).
    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    # codings are listed in the order applied: undo the last first
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, _GZIP, coding, limit)
        elif coding == "deflate":
            wbits = _ZLIB if _has_zlib_header(body) else _RAW
            body = _inflate(body, wbits, coding, limit)
        else:
            raise InvalidArgument(
                f"Unsupported Content-Encoding: {coding} (gzip, deflate and identity are)"
            )
    return body


def _has_zlib_header(data: bytes) -> bool:
    """RFC 1950: method 8 (deflate) in the low nibble and a header checksum divisible by 31."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def _inflate(data: bytes, wbits: int, coding: str, limit: int) -> bytes:
    out = bytearray()
    pending = memoryview(data)
    inflater = zlib.decompressobj(wbits)
    chunk: bytes | memoryview
    try:
        while True:
            # feed bounded pieces and ask for at most what the limit still allows
            if not inflater.unconsumed_tail:
                chunk, pending = pending[:_CHUNK], pending[_CHUNK:]
            else:
                chunk = inflater.unconsumed_tail
            out += inflater.decompress(chunk, limit + 1 - len(out))
            if len(out) > limit:
                raise PayloadTooLarge(f"decompressed request body exceeds {limit} bytes")
            if inflater.eof:
                if wbits == _GZIP and inflater.unused_data:  # a further gzip member
                    pending = memoryview(inflater.unused_data + bytes(pending))
                    inflater = zlib.decompressobj(wbits)
                    continue
                return bytes(out)
            if not pending and not inflater.unconsumed_tail:
                raise InvalidArgument(
                    f"Content-Encoding {coding}: the compressed body is truncated"
                )
    except zlib.error as exc:
        raise InvalidArgument(
            f"Content-Encoding {coding}: the body is not {coding} data: {exc}"
        ) from exc
