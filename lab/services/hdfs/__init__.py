"""racklab's HDFS: NameNode, DataNodes and a checkpointing secondary NameNode in Python,
speaking WebHDFS as Hadoop documents it, configured by Hadoop's XML site files."""
