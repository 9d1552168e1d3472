"""MapReduce on racklab's YARN: an ApplicationMaster, map and reduce tasks, example jobs."""
