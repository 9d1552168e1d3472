"""Hadoop IPC (hadoop-common): the protobuf codec driven by schemas made from Hadoop's
.proto files, and the IPC server that HDFS (and later YARN) serve their protocols on."""
