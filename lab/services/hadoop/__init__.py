"""What HDFS and YARN share, as Hadoop's hadoop-common does for them."""
