"""racklab's YARN: a ResourceManager, NodeManagers and a MapReduce ApplicationMaster.

Run alone: ``python -m lab.services.yarn resourcemanager|nodemanager --config DIR``,
where DIR holds yarn-site.xml (and capacity-scheduler.xml for the RM) in Hadoop's
format and keys. The RM speaks Hadoop's documented REST API on its webapp address;
the daemons talk to each other (resource tracker, AM protocol, container
management) with small JSON-over-HTTP RPCs instead of Hadoop's protobuf RPC.
"""
