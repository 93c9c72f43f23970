#!/usr/bin/env python3
"""Writes the seed corpus of wire_fuzz (fuzz/corpus/wire_fuzz/): valid UploadUpdate streams,
protobuf hand-encoded (no protobuf module needed). Run from the repository root."""
import hashlib
import os
import struct


def varint(n):
    out = b''
    while True:
        byte = n & 0x7f
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def field(number, wire_type, payload):
    key = varint(number << 3 | wire_type)
    if wire_type == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def chunk(name, dtype=None, shape=None, total=None, offset=0, data=b'', sha=None):
    out = field(1, 2, name.encode())
    if dtype is not None:
        out += field(2, 2, dtype.encode())
        out += field(3, 2, b''.join(varint(d) for d in shape))
        out += field(4, 0, total)
    if offset:
        out += field(5, 0, offset)
    if data:
        out += field(6, 2, data)
    if sha is not None:
        out += field(7, 2, sha)
    return out


def request(chunk_bytes, first=False):
    out = b''
    if first:
        out += field(1, 2, field(1, 2, b'job-1') + field(2, 0, 3))  # RoundRef{job_id, round}
    return out + field(2, 2, chunk_bytes)


def stream(mode, messages):
    out = bytes([mode])
    for message in messages:
        out += struct.pack('<H', len(message)) + message
    return out


def tensor_messages(name, dtype, shape, data, pieces, first=False):
    """A tensor as `pieces` chunks, the digest on the last one."""
    size = len(data)
    step = max(1, -(-size // pieces)) if size else 1
    messages, offset = [], 0
    while True:
        piece = data[offset:offset + step]
        last = offset + len(piece) >= size
        messages.append(request(chunk(name, dtype if offset == 0 else None, shape, size, offset, piece,
                                      hashlib.sha256(data).digest() if last else None),
                                first and offset == 0))
        offset += len(piece)
        if last:
            return messages


out_dir = 'fuzz/corpus/wire_fuzz'
os.makedirs(out_dir, exist_ok=True)
weights = struct.pack('<6f', 1, 2, 3, 4, 5, 6)
bias = struct.pack('<2f', 0.5, -0.5)
seeds = {
    # Round 0: two tensors, the first in three chunks.
    'round0_two_tensors': stream(0, tensor_messages('w', 'F32', [2, 3], weights, 3, first=True) +
                                 tensor_messages('b', 'F32', [2], bias, 1)),
    'round0_int_types': stream(0, tensor_messages('ids', 'I64', [2], struct.pack('<2q', 1, 2), 1, first=True) +
                               tensor_messages('m', 'U8', [3], b'\x01\x02\x03', 2)),
    # Later round: one U32 tensor "update" of 4 elements (mode byte 1, size byte 3 -> 1 + 3).
    'update_u32': b'\x01\x03' + stream(1, tensor_messages('update', 'U32', [4], struct.pack('<4I', 1, 2, 3, 4), 2,
                                                          first=True))[1:],
}
for name, data in seeds.items():
    with open(os.path.join(out_dir, name), 'wb') as f:
        f.write(data)
print('wrote', len(seeds), 'seeds to', out_dir)
