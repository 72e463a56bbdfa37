"""MQTT and Sparkplug B: the collector service, its landing area and the payload decoders.

`sparkplug_b.proto` is Eclipse Tahu's published schema (eclipse-tahu/tahu, sparkplug_b/sparkplug_b.proto,
commit 5736e40). `sparkplug_b_pb2.py` was generated from it, unchanged, with
`python -m grpc_tools.protoc --proto_path=. --python_out=. sparkplug_b.proto` (grpcio-tools 1.81.1,
protoc for protobuf 6.33.5) run in this folder; regenerate the same way, never edit it.
"""
