"""protoc output for contracts/retrieval.proto; do not edit."""
