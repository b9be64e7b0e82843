#!/usr/bin/python3
"""Wire-compatibility check between two compiled .proto files (FileDescriptorSets from
`protoc --descriptor_set_out`): the server's proto/inference/grpc_predict_v2.proto and
the client's tests/reference/interop/kserve_v2/grpc_predict_v2.proto (typed from the
public KServe definition). Compares package, services and their methods (names,
request/response types, streaming), and every message, nested message, map entry,
oneof and field (name, number, type, label, message type, oneof membership), both ways.
Prints every discrepancy; exit 0 and "protos match" when there is none.

usage: compare_protos.py SERVER.pb CLIENT.pb
"""
import sys

from google.protobuf import descriptor_pb2


def load(path):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    if len(fds.file) != 1:
        raise SystemExit("%s: expected one file, got %d" % (path, len(fds.file)))
    return fds.file[0]


def messages(file):
    out = {}

    def walk(prefix, msg):
        name = prefix + "." + msg.name
        out[name] = msg
        for nested in msg.nested_type:
            walk(name, nested)

    for msg in file.message_type:
        walk("." + file.package, msg)
    return out


def field_shape(msg, field):
    oneof = msg.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else ""
    return {
        "number": field.number,
        "type": descriptor_pb2.FieldDescriptorProto.Type.Name(field.type),
        "label": descriptor_pb2.FieldDescriptorProto.Label.Name(field.label),
        "type_name": field.type_name,
        "oneof": oneof,
        "map_entry": None,
    }


def compare(server, client):
    problems = []
    if server.package != client.package:
        problems.append("package: server %r, client %r" % (server.package, client.package))
    s_services = {s.name: s for s in server.service}
    c_services = {s.name: s for s in client.service}
    for name in sorted(set(s_services) | set(c_services)):
        if name not in s_services or name not in c_services:
            problems.append("service %s only in the %s" %
                            (name, "client" if name not in s_services else "server"))
            continue
        s_methods = {m.name: m for m in s_services[name].method}
        c_methods = {m.name: m for m in c_services[name].method}
        for m in sorted(set(s_methods) | set(c_methods)):
            if m not in s_methods or m not in c_methods:
                problems.append("rpc %s.%s only in the %s" %
                                (name, m, "client" if m not in s_methods else "server"))
                continue
            for attr in ("input_type", "output_type", "client_streaming", "server_streaming"):
                a, b = getattr(s_methods[m], attr), getattr(c_methods[m], attr)
                if a != b:
                    problems.append("rpc %s.%s %s: server %r, client %r" % (name, m, attr, a, b))
    s_msgs, c_msgs = messages(server), messages(client)
    for name in sorted(set(s_msgs) | set(c_msgs)):
        if name not in s_msgs or name not in c_msgs:
            problems.append("message %s only in the %s" %
                            (name, "client" if name not in s_msgs else "server"))
            continue
        s, c = s_msgs[name], c_msgs[name]
        if s.options.map_entry != c.options.map_entry:
            problems.append("message %s: map entry on one side only" % name)
        s_oneofs = [o.name for o in s.oneof_decl]
        c_oneofs = [o.name for o in c.oneof_decl]
        if s_oneofs != c_oneofs:
            problems.append("message %s oneofs: server %s, client %s" % (name, s_oneofs, c_oneofs))
        s_fields = {f.name: f for f in s.field}
        c_fields = {f.name: f for f in c.field}
        for f in sorted(set(s_fields) | set(c_fields)):
            if f not in s_fields or f not in c_fields:
                problems.append("field %s.%s only in the %s" %
                                (name, f, "client" if f not in s_fields else "server"))
                continue
            a, b = field_shape(s, s_fields[f]), field_shape(c, c_fields[f])
            for key in a:
                if a[key] != b[key]:
                    problems.append("field %s.%s %s: server %r, client %r" %
                                    (name, f, key, a[key], b[key]))
        s_numbers = {f.number: f.name for f in s.field}
        c_numbers = {f.number: f.name for f in c.field}
        for number in sorted(set(s_numbers) & set(c_numbers)):
            if s_numbers[number] != c_numbers[number]:
                problems.append("message %s field number %d: server %s, client %s" %
                                (name, number, s_numbers[number], c_numbers[number]))
    return problems, len(s_msgs), sum(len(s.method) for s in server.service)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    problems, n_messages, n_methods = compare(load(sys.argv[1]), load(sys.argv[2]))
    for p in problems:
        print("MISMATCH: " + p)
    if problems:
        print("protos differ: %d discrepancies" % len(problems))
        return 1
    print("protos match: %d messages, %d rpcs" % (n_messages, n_methods))
    return 0


if __name__ == "__main__":
    sys.exit(main())
