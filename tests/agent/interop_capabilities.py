"""Calls chaosdrill.agent.v1.Agent/Capabilities with Debian's python3-grpcio (gRPC's
Python/C-core implementation, not our C++ client), without generated stubs: the request
is an empty message (zero bytes) and the answer is checked to parse as a protobuf that
carries the hostname (field 1, a string).

usage: interop_capabilities.py TARGET CA [CERT KEY]
exit 0 and prints "ok HOSTNAME" on success; exit 3 and prints "refused CODE: DETAILS".
"""
import sys

import grpc


def read(path):
    with open(path, "rb") as f:
        return f.read()


def field1_string(data):
    # Minimal protobuf walk: field 1, wire type 2 (length-delimited) holds the hostname.
    i = 0
    while i < len(data):
        key = data[i]
        i += 1
        if key == 0x0A:
            length, shift = 0, 0
            while True:
                b = data[i]
                i += 1
                length |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            return data[i:i + length].decode()
        break
    return None


def main():
    target, ca = sys.argv[1], sys.argv[2]
    cert = read(sys.argv[3]) if len(sys.argv) > 4 else None
    key = read(sys.argv[4]) if len(sys.argv) > 4 else None
    creds = grpc.ssl_channel_credentials(root_certificates=read(ca), private_key=key,
                                         certificate_chain=cert)
    with grpc.secure_channel(target, creds) as channel:
        call = channel.unary_unary("/chaosdrill.agent.v1.Agent/Capabilities",
                                   request_serializer=None, response_deserializer=None)
        try:
            answer = call(b"", timeout=20)
        except grpc.RpcError as e:
            print("refused %s: %s" % (e.code().name, e.details()))
            return 3
    host = field1_string(answer)
    if not host:
        print("bad answer %r" % answer[:40])
        return 4
    print("ok " + host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
