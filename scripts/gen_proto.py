"""Generates the control-plane gRPC code from proto/tensorfusion/v1/*.proto into tfclient/_gen/.

Run by `make proto` (part of `make native`). The output is never committed; tfclient.protos puts
tfclient/_gen on sys.path so the generated `from tensorfusion.v1 import x_pb2` imports resolve.
"""
import glob
import os
import sys

from grpc_tools import protoc
import grpc_tools

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tfclient", "_gen")
PROTO_DIR = os.path.join(ROOT, "proto")
protos = sorted(glob.glob(os.path.join(PROTO_DIR, "tensorfusion", "v1", "*.proto")))
if not protos:
    print("gen_proto: no .proto files yet")
    raise SystemExit(0)
os.makedirs(OUT, exist_ok=True)
well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{well_known}", f"--python_out={OUT}",
                  f"--grpc_python_out={OUT}", *protos])
if rc != 0:
    sys.exit(f"gen_proto: protoc failed with {rc}")
for d in (os.path.join(OUT, "tensorfusion"), os.path.join(OUT, "tensorfusion", "v1")):
    open(os.path.join(d, "__init__.py"), "a").close()
# etcd v3's API (a wire-compatible subset, proto/etcd/) for tfscheduler.etcd_store: `import etcdserverpb.rpc_pb2`
etcd_dir = os.path.join(PROTO_DIR, "etcd")
etcd_protos = sorted(glob.glob(os.path.join(etcd_dir, "*", "*.proto")))
rc = protoc.main(["protoc", f"-I{etcd_dir}", f"--python_out={OUT}", f"--grpc_python_out={OUT}", *etcd_protos])
if rc != 0:
    sys.exit(f"gen_proto: protoc failed on the etcd protos with {rc}")
for d in ("mvccpb", "etcdserverpb"):
    open(os.path.join(OUT, d, "__init__.py"), "a").close()
print(f"gen_proto: {len(protos) + len(etcd_protos)} files -> {OUT}")
