#!/usr/bin/python3
"""Interop check: an Open Inference Protocol v2 client built only from Debian's
python3-grpcio and python3-protobuf, with message classes and the service stub generated
by `protoc --python_out --grpc_python_out` (Debian's grpc_python_plugin) from
tests/reference/interop/kserve_v2/grpc_predict_v2.proto, a proto typed from the public
KServe v2 definition (not the server's own). It calls ServerLive, ServerReady,
ModelReady, ServerMetadata, ModelMetadata and ModelInfer (raw input, as Triton's client
sends, and typed fp32_contents, with request parameters and a requested output) on a
server and checks the golden output. Exit 0 and "interop ok" on success; 1 with a reason
otherwise.

usage: oip_client.py --gen DIR --target HOST:PORT --golden golden.json
  DIR: holds grpc_predict_v2_pb2.py and grpc_predict_v2_pb2_grpc.py
  golden.json: {"model": "tiny-mlp", "input": [...], "output": [...], "tolerance": 1e-3}
"""
import argparse
import json
import struct
import sys

import grpc


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gen", required=True, help="directory with the generated modules")
    parser.add_argument("--target", required=True)
    parser.add_argument("--golden", required=True)
    args = parser.parse_args()
    sys.path.insert(0, args.gen)
    # pylint: disable=import-outside-toplevel,import-error
    import grpc_predict_v2_pb2 as pb
    import grpc_predict_v2_pb2_grpc as pb_grpc

    with open(args.golden, encoding="utf-8") as f:
        golden = json.load(f)

    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(args.target))

    if not stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live:
        return fail("ServerLive says not live")
    if not stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready:
        return fail("ServerReady says not ready")
    if not stub.ModelReady(pb.ModelReadyRequest(name=golden["model"]), timeout=10).ready:
        return fail("ModelReady says %s is not ready" % golden["model"])
    server = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10)
    if not server.name:
        return fail("ServerMetadata has no name: %s" % server)

    md = stub.ModelMetadata(pb.ModelMetadataRequest(name=golden["model"]), timeout=10)
    if md.name != golden["model"] or len(md.inputs) != 1 or md.inputs[0].datatype != "FP32":
        return fail("unexpected model metadata: %s" % md)
    if len(md.outputs) != 1 or md.outputs[0].datatype != "FP32":
        return fail("unexpected model outputs: %s" % md)
    input_name = md.inputs[0].name
    output_name = md.outputs[0].name
    width = md.inputs[0].shape[-1]
    if width != len(golden["input"]):
        return fail("metadata says width %d, golden input has %d" % (width, len(golden["input"])))

    values = golden["input"]
    raw_request = pb.ModelInferRequest(
        model_name=golden["model"], id="interop-raw",
        inputs=[pb.ModelInferRequest.InferInputTensor(
            name=input_name, datatype="FP32", shape=[1, width])],
        raw_input_contents=[struct.pack("<%df" % width, *values)])
    typed_request = pb.ModelInferRequest(
        model_name=golden["model"], id="interop-typed",
        parameters={"priority": pb.InferParameter(int64_param=1),
                    "tag": pb.InferParameter(string_param="interop")},
        inputs=[pb.ModelInferRequest.InferInputTensor(
            name=input_name, datatype="FP32", shape=[1, width],
            contents=pb.InferTensorContents(fp32_contents=values))],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(
            name=output_name, parameters={"binary_data": pb.InferParameter(bool_param=False)})])

    for request in (raw_request, typed_request):
        response = stub.ModelInfer(request, timeout=10)
        if response.id != request.id:
            return fail("response id %r, expected %r" % (response.id, request.id))
        if response.model_name != golden["model"] or len(response.outputs) != 1:
            return fail("%s: unexpected response %s" % (request.id, response))
        out = response.outputs[0]
        if out.name != output_name or out.datatype != "FP32" or list(out.shape) != [
                1, len(golden["output"])]:
            return fail("%s: output tensor %s/%s%s" % (request.id, out.name, out.datatype,
                                                       list(out.shape)))
        if response.raw_output_contents:
            raw = response.raw_output_contents[0]
            got = list(struct.unpack("<%df" % (len(raw) // 4), raw))
        else:
            got = list(out.contents.fp32_contents)
        want = golden["output"]
        if len(got) != len(want):
            return fail("%s: %d outputs, expected %d" % (request.id, len(got), len(want)))
        tol = golden.get("tolerance", 1e-3)
        for g, w in zip(got, want):
            if abs(g - w) > tol * max(abs(g), abs(w), 1.0):
                return fail("%s: output %r differs from golden %r" % (request.id, got, want))
    print("interop ok: ServerLive, ServerReady, ModelReady, ServerMetadata (%s), ModelMetadata, "
          "ModelInfer (raw and typed) match golden" % server.name)
    return 0


def fail(reason):
    print("interop FAILED: " + reason)
    return 1


if __name__ == "__main__":
    sys.exit(main())
